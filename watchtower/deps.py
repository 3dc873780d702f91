"""The routes' database session: FastAPI stays out of what the CLI and the scheduler import from watchtower.db."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from watchtower.db import writer


def get_session(request: Request) -> Iterator[Session]:
    """One session per request (a writer unless it is a read); the route commits the work it owns."""
    engine = request.app.state.engine
    with Session(engine if request.method in ("GET", "HEAD") else writer(engine)) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
