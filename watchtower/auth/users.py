"""People over JSON: add, list, read, edit. Deactivate rather than delete: rotations and timelines name them."""

from datetime import datetime
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from watchtower.auth.bearer import WriteAccess
from watchtower.auth.models import HANDLE, User
from watchtower.auth.roles import Role
from watchtower.auth.sessions import end_sessions_of
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.errors import Conflict, NotFound, problem_responses

SLACK_ID = r"^[UW][A-Z0-9]{2,30}$"
router = APIRouter(tags=["people"], responses=problem_responses(404))
writes = APIRouter(tags=["people"], dependencies=WriteAccess, responses=problem_responses(401, 403, 404, 409, 422))
Handle = Annotated[str, Path(pattern=HANDLE, description="The person's handle")]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'") from exc
    if name not in available_timezones() and name != "UTC":
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'")
    return name


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handle: str = Field(pattern=HANDLE)
    display_name: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    slack_user_id: str | None = Field(default=None, pattern=SLACK_ID, description="Slack member id, e.g. U024BE7LH")
    time_zone: str = Field(default="UTC", max_length=64)
    role: Role = Field(default=Role.viewer, description="viewer (reads), responder (answers incidents), admin")

    _tz = field_validator("time_zone")(_zone)


class UserUpdate(BaseModel):
    """Fields to change; absent ones stay."""

    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    slack_user_id: str | None = Field(default=None, pattern=SLACK_ID)
    time_zone: str | None = Field(default=None, max_length=64)
    role: Role | None = None
    active: bool | None = None

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _zone(value)

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        nulled = [f for f in ("display_name", "time_zone", "role", "active") if f in self.model_fields_set
                  and getattr(self, f) is None]
        if nulled:
            raise PydanticCustomError("null", "{fields} cannot be null; leave a field out to keep it",
                                      {"fields": ", ".join(nulled)})
        return self


class UserRead(BaseModel):
    handle: str
    display_name: str
    email: str | None
    slack_user_id: str | None
    time_zone: str
    role: str
    active: bool
    created_at: datetime


def get_user(session: Session, handle: str) -> User:
    """The person with this handle, or NotFound."""
    user = session.exec(select(User).where(User.handle == handle)).first()
    if user is None:
        raise NotFound(f"no user with handle '{handle}'")
    return user


def user_by_slack_id(session: Session, slack_user_id: str) -> User | None:
    """The active person with this Slack member id (how a Slack click is mapped to someone)."""
    return session.exec(select(User).where(User.slack_user_id == slack_user_id, col(User.active))).first()


def _save(session: Session, user: User) -> None:
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError as exc:
        raise Conflict("handle, e-mail or Slack user id already belongs to someone else") from exc


@router.get("/users", response_model=list[UserRead])
def list_users(session: SessionDep) -> list[User]:
    """Everyone, by handle."""
    return list(session.exec(select(User).order_by(col(User.handle))).all())


@router.get("/users/{handle}", response_model=UserRead)
def read_user(handle: Handle, session: SessionDep) -> User:
    """One person."""
    return get_user(session, handle)


def create_user(session: Session, body: UserCreate) -> User:
    """Add a person (flushed, not committed); Conflict if the handle, e-mail or Slack id is taken."""
    user = User(**body.model_dump(mode="json"))
    _save(session, user)
    return user


@writes.post("/users", response_model=UserRead, status_code=201)
def add_user(body: UserCreate, session: SessionDep) -> User:
    """Add a person (409 if the handle, e-mail or Slack id is taken)."""
    user = create_user(session, body)
    session.commit()
    return user


@writes.patch("/users/{handle}", response_model=UserRead)
def edit_user(handle: Handle, body: UserUpdate, session: SessionDep) -> User:
    """Change a person's details; `active: false` takes them out of rotations and Slack without losing history."""
    user = get_user(session, handle)
    for key, value in body.model_dump(exclude_unset=True, mode="json").items():
        setattr(user, key, value)
    user.updated_at = utcnow()
    _save(session, user)
    if not user.active and user.id is not None:  # a deactivated person is signed out everywhere at once
        end_sessions_of(session, user.id)
    session.commit()
    return user


router.include_router(writes)
