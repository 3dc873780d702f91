"""Tokens over JSON: anyone creates, lists and revokes their own; admins see and revoke anyone's and issue
pipeline (service) tokens. A token's secret is in the creation answer only."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from watchtower.auth import tokens
from watchtower.auth.access import PrincipalDep
from watchtower.auth.models import ApiToken, User
from watchtower.auth.principal import Principal
from watchtower.auth.roles import Role
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.errors import Forbidden, NotFound, Unauthorized, problem_responses
from watchtower.limits import INT32_MAX, SafeStr
from watchtower.registry.models import Pipeline

router = APIRouter(tags=["security"], responses=problem_responses(401, 403, 404, 422))
TokenId = Annotated[int, Path(ge=1, le=INT32_MAX)]  # the id column is INTEGER on PostgreSQL
PipelineName = Annotated[SafeStr, Path(max_length=200)]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: SafeStr = Field(min_length=1, max_length=100, description="What it is for, e.g. 'laptop' or 'airflow'")
    role: Role | None = Field(default=None, description="At most your own role (default: your role)")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="Never expires when left out")


class PipelineTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: SafeStr = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenRead(BaseModel):
    id: int
    name: str
    prefix: str
    role: str | None
    owner: str | None
    pipeline: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="The secret: shown this once, only its hash is stored")


def _read(session: Session, token: ApiToken) -> TokenRead:
    owner = session.get(User, token.user_id) if token.user_id else None
    pipeline = session.get(Pipeline, token.pipeline_id) if token.pipeline_id else None
    return TokenRead(id=token.id or 0, name=token.name, prefix=token.prefix,
                     role=None if pipeline else token.role, owner=owner.handle if owner else None,
                     pipeline=pipeline.name if pipeline else None, created_by=token.created_by,
                     created_at=token.created_at, expires_at=token.expires_at, last_used_at=token.last_used_at,
                     revoked_at=token.revoked_at)


def _person(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthorized("sign in, or send a token: Authorization: Bearer <token>")
    if principal.user_id is None:
        raise Forbidden("only a person has tokens: add one with `watchtower user add` and use theirs")
    return principal


def _expiry(days: int | None) -> datetime | None:
    return None if days is None else utcnow() + timedelta(days=days)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenCreate, session: SessionDep, principal: PrincipalDep) -> TokenCreated:
    """A personal token for yourself, with at most your role; the answer holds its secret, once."""
    me = _person(principal)
    owner = session.get(User, me.user_id)
    if owner is None or me.role is None:
        raise Unauthorized("your account is gone")
    role = body.role or Role(owner.role)
    if not Role(owner.role).allows(role):
        raise Forbidden(f"a token cannot have more than your own role ({owner.role})")
    token, secret = tokens.issue(session, name=body.name, role=role, created_by=owner.handle, user=owner,
                                 expires_at=_expiry(body.expires_in_days))
    session.commit()
    return TokenCreated(**_read(session, token).model_dump(), token=secret)


@router.get("/tokens", response_model=list[TokenRead])
def list_tokens(session: SessionDep, principal: PrincipalDep,
                everyone: Annotated[bool, Query(alias="all", description="Everyone's (admins)")] = False
                ) -> list[TokenRead]:
    """Your tokens, newest first (admins: `?all=true` for everyone's, pipeline tokens included)."""
    me = _person(principal) if not (principal and principal.allows(Role.admin)) else principal
    query = select(ApiToken).order_by(col(ApiToken.id).desc())
    if everyone and not me.allows(Role.admin):
        raise Forbidden("listing everyone's tokens needs the admin role")
    if not everyone:
        query = query.where(ApiToken.user_id == me.user_id)
    return [_read(session, t) for t in session.exec(query).all()]


@router.delete("/tokens/{token_id}", response_model=TokenRead)
def revoke_token(token_id: TokenId, session: SessionDep, principal: PrincipalDep) -> TokenRead:
    """Revoke one of your tokens (admins: anyone's); it stops working at once."""
    if principal is None:
        raise Unauthorized("sign in, or send a token: Authorization: Bearer <token>")
    token = session.get(ApiToken, token_id)
    if token is None or not (principal.allows(Role.admin) or token.user_id == principal.user_id):
        raise NotFound(f"no token {token_id} of yours")
    tokens.revoke(session, token, utcnow())
    session.commit()
    return _read(session, token)


def _pipeline(session: Session, name: str) -> Pipeline:
    pipeline = session.exec(select(Pipeline).where(Pipeline.name == name)).first()
    if pipeline is None:
        raise NotFound(f"no pipeline named '{name}'")
    return pipeline


@router.post("/pipelines/{name}/tokens", response_model=TokenCreated, status_code=201)
def create_pipeline_token(name: PipelineName, body: PipelineTokenCreate, session: SessionDep,
                          principal: PrincipalDep) -> TokenCreated:
    """A service token for one pipeline: it polls that pipeline and sends data for its models, nothing else."""
    pipeline = _pipeline(session, name)
    token, secret = tokens.issue(session, name=body.name, role=Role.viewer, pipeline=pipeline,
                                 created_by=(principal.actor if principal else "api-token")[:64],
                                 expires_at=_expiry(body.expires_in_days))
    session.commit()
    return TokenCreated(**_read(session, token).model_dump(), token=secret)


@router.get("/pipelines/{name}/tokens", response_model=list[TokenRead])
def list_pipeline_tokens(name: PipelineName, session: SessionDep) -> list[TokenRead]:
    """A pipeline's service tokens, newest first."""
    pipeline = _pipeline(session, name)
    query = select(ApiToken).where(ApiToken.pipeline_id == pipeline.id).order_by(col(ApiToken.id).desc())
    return [_read(session, t) for t in session.exec(query).all()]
