"""`watchtower user set-password HANDLE`: the password is prompted for (twice), or read from standard input."""

import getpass
import sys

from sqlmodel import Session

from watchtower.auth.signin import set_password
from watchtower.auth.users import get_user
from watchtower.clock import utcnow
from watchtower.db import engine_for, migrate, writer
from watchtower.errors import WatchtowerError
from watchtower.settings import Settings


def _read_password() -> str | None:
    if not sys.stdin.isatty():  # scripts pipe it in: `printf '%s' "$PASSWORD" | watchtower user set-password ana`
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        print("set-password: the two passwords differ; nothing changed", file=sys.stderr)
        return None
    return first


def set_password_command(settings: Settings, handle: str) -> int:
    """Set `handle`'s password; 2 (saying why) for an unknown person or a password out of bounds."""
    engine = engine_for(settings)
    try:  # the engine's connections closed at the end, as `user add` does
        migrate(engine)
        password = _read_password()
        if password is None:
            return 2
        with Session(writer(engine)) as session:
            set_password(session, get_user(session, handle), password, utcnow())
            session.commit()
    except WatchtowerError as exc:
        print(f"set-password: {exc.detail}; nothing changed", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"password set for {handle}; their sessions were ended")
    return 0
