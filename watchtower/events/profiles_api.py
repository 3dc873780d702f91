"""Profiles posted from outside (a Spark job over a data lake, `watchtower profile`): they join every window that
holds their whole [start, end), or become the model's reference profile. The body's size is bounded by
WATCHTOWER_MAX_BODY_BYTES, as every JSON body is."""

import binascii
from datetime import datetime
from typing import Any, cast

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from watchtower.auth.access import PrincipalDep
from watchtower.auth.bearer import WriteAccess
from watchtower.clock import to_utc
from watchtower.deps import SessionDep
from watchtower.errors import Invalid, field_error, problem_responses
from watchtower.events.api import active_model
from watchtower.events.models import PostedProfile
from watchtower.registry.models import MonitoredModel
from watchtower.registry.params import ModelName
from watchtower.registry.service import get_model

router = APIRouter(prefix="/models/{name}", tags=["events"])
MIN_K, MAX_K = 8, 65_535  # what a KLL sketch may have


class ProfileIn(BaseModel):
    """A profile of events kept elsewhere, as `Profile.to_json()` writes it (sketches in base64)."""

    model_config = ConfigDict(extra="forbid")
    start: datetime | None = Field(default=None, description="First served time covered (inclusive)")
    end: datetime | None = Field(default=None, description="End of the covered time (exclusive)")
    profile: dict[str, Any] = Field(description="The profile: {version, rows, k, category_cap, numeric, "
                                    "categorical}")
    reference: bool = Field(default=False, description="true: the model's reference profile (start/end optional)")
    source: str = Field(default="", max_length=100, description='Where it came from, e.g. "spark"')


class ProfilePosted(BaseModel):
    id: int
    start: datetime | None
    end: datetime | None
    rows: int
    reference: bool


class ProfileListed(ProfilePosted):
    source: str
    created_at: datetime
    created_by: str | None


@router.post("/profiles", status_code=201, response_model=ProfilePosted, dependencies=WriteAccess,
             responses=problem_responses(401, 404, 409, 413, 422))
def post_profile(name: ModelName, body: ProfileIn, session: SessionDep, principal: PrincipalDep) -> ProfilePosted:
    """Store a profile of the model's events in [start, end) (or, with `reference: true`, its reference profile).
    Sketches of any k merge (a window's error bound follows the smallest k merged into it)."""
    model = active_model(session, name)
    start, end = _span(body)
    profile = _decoded(body.profile)
    _check(model, profile)
    posted = PostedProfile(model_id=cast(int, model.id), start=start, end=end, rows=profile.rows,
                           profile=profile.to_bytes(), reference=body.reference, source=body.source,
                           created_by=principal.actor if principal else None)
    session.add(posted)
    session.commit()
    session.refresh(posted)
    assert posted.id is not None
    return ProfilePosted(id=posted.id, start=posted.start, end=posted.end, rows=posted.rows,
                         reference=posted.reference)


@router.get("/profiles", response_model=list[ProfileListed], responses=problem_responses(401, 404, 422))
def list_profiles(name: ModelName, session: SessionDep,
                  limit: int = Query(default=100, ge=1, le=1000, description="Newest first, at most this many")
                  ) -> list[ProfileListed]:
    """The profiles posted for the model, newest first (without their bytes)."""
    model = get_model(session, name)
    return _listed(session, model, limit)


def _listed(session: Session, model: MonitoredModel, limit: int) -> list[ProfileListed]:
    rows = session.exec(select(PostedProfile).options(defer(PostedProfile.profile))  # type: ignore[arg-type]
                        .where(PostedProfile.model_id == model.id).order_by(col(PostedProfile.id).desc())
                        .limit(limit)).all()
    return [ProfileListed(id=p.id or 0, start=p.start, end=p.end, rows=p.rows, reference=p.reference,
                          source=p.source, created_at=p.created_at, created_by=p.created_by) for p in rows]


def _span(body: ProfileIn) -> tuple[datetime | None, datetime | None]:
    start = to_utc(body.start) if body.start else None
    end = to_utc(body.end) if body.end else None
    errors = []
    if not body.reference:
        errors += [field_error(f"body.{name}", "required (unless reference is true)")
                   for name, value in (("start", start), ("end", end)) if value is None]
    if start is not None and end is not None and start >= end:
        errors.append(field_error("body.end", "must be after start (the span is [start, end))"))
    if errors:
        raise Invalid("; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors)
    return start, end


def _decoded(raw: dict[str, Any]) -> Any:
    from detectors.sketches.profile import Profile

    try:
        return Profile.from_json(raw)
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, binascii.Error) as exc:
        reason = f"not a profile as Profile.to_json() writes it ({type(exc).__name__}: {str(exc)[:200]})"
        raise Invalid(f"body.profile: {reason}", errors=[field_error("body.profile", reason)]) from exc


def _check(model: MonitoredModel, profile: Any) -> None:
    """Every column one the model has, of its kind; sketches that load; counts that add up to the rows."""
    import datasketches as ds

    from watchtower.events.segstore.profiles import known_kind

    errors = []
    if not 0 <= profile.rows < 2**63:
        errors.append(field_error("body.profile.rows", "must be >= 0 (and fit 64 bits)"))
    if not MIN_K <= profile.k <= MAX_K:
        errors.append(field_error("body.profile.k", f"must be between {MIN_K} and {MAX_K}"))
    for name, sketch in profile.numeric.items():
        where = f"body.profile.numeric.{name}"
        kind = known_kind(model, name)
        if kind != "numeric":
            errors.append(field_error(where, "not a numeric column of the model" if kind is None
                                      else "is categorical in the model's schema"))
            continue
        try:
            kll = ds.kll_doubles_sketch.deserialize(sketch.sketch)
        except Exception as exc:  # the binding raises whatever its C++ side throws
            errors.append(field_error(f"{where}.sketch", f"not a KLL doubles sketch ({str(exc)[:100]})"))
            continue
        if kll.k != sketch.k or not MIN_K <= kll.k <= MAX_K:
            errors.append(field_error(f"{where}.k", f"the sketch has k={kll.k}"))
        if kll.n != sketch.count:
            errors.append(field_error(f"{where}.count", f"the sketch holds {kll.n} values"))
        if min(sketch.count, sketch.missing, sketch.non_finite) < 0:
            errors.append(field_error(where, "counts must be >= 0"))
        elif sketch.count + sketch.missing + sketch.non_finite != profile.rows:
            errors.append(field_error(where, f"count + missing + non_finite is "
                                      f"{sketch.count + sketch.missing + sketch.non_finite}, rows is {profile.rows}"))
    for name, counts in profile.categorical.items():
        where = f"body.profile.categorical.{name}"
        kind = known_kind(model, name)
        if kind != "categorical":
            errors.append(field_error(where, "not a categorical column of the model" if kind is None
                                      else "is numeric in the model's schema"))
            continue
        if counts.missing < 0 or any(n < 0 for n in counts.counts.values()):
            errors.append(field_error(where, "counts must be >= 0"))
        elif counts.count + counts.missing != profile.rows:
            errors.append(field_error(where, f"counts + missing is {counts.count + counts.missing}, rows is "
                                      f"{profile.rows}"))
        if counts.capped:
            try:
                ds.hll_sketch.deserialize(counts.hll)
            except Exception as exc:
                errors.append(field_error(f"{where}.hll", f"not an HLL sketch ({str(exc)[:100]})"))
    if errors:
        raise Invalid(f"the profile does not fit model '{model.name}': "
                      + "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5]), errors=errors)
