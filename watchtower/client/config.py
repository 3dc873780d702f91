"""The client's settings: constructor arguments, defaulting to WATCHTOWER_CLIENT_* environment variables.

Read with os.environ rather than pydantic-settings: the client is imported into other systems' serving code and
must stay light (httpx only).
"""

import os
from dataclasses import dataclass
from typing import Literal

MAX_BATCH = 10_000  # the server's largest batch (watchtower.events.schemas.MAX_BATCH)
OnFull = Literal["block", "drop"]


class ClientConfigError(ValueError):
    """A setting is out of range; the message names the argument and its environment variable."""


@dataclass(frozen=True)
class ClientConfig:
    """Where to send, how much to batch, how long to retry; see README "Client for models served elsewhere"."""

    url: str
    token: str | None
    batch_size: int = 500
    flush_interval_s: float = 1.0
    max_buffer: int = 100_000
    on_full: OnFull = "block"
    retry_for_s: float = 300.0
    max_backoff_s: float = 30.0
    timeout_s: float = 10.0
    close_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.url:
            raise ClientConfigError("url (WATCHTOWER_CLIENT_URL) is required: the Watchtower server's base URL")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ClientConfigError(f"batch_size (WATCHTOWER_CLIENT_BATCH_SIZE) must be in 1..{MAX_BATCH}, "
                                    f"not {self.batch_size}")
        if self.max_buffer < self.batch_size:
            raise ClientConfigError(f"max_buffer (WATCHTOWER_CLIENT_MAX_BUFFER) must be at least batch_size "
                                    f"({self.batch_size}), not {self.max_buffer}")
        if self.on_full not in ("block", "drop"):
            raise ClientConfigError(f"on_full (WATCHTOWER_CLIENT_ON_FULL) must be 'block' or 'drop', "
                                    f"not {self.on_full!r}")
        for name in ("flush_interval_s", "retry_for_s", "max_backoff_s", "timeout_s", "close_timeout_s"):
            if not getattr(self, name) > 0:
                raise ClientConfigError(f"{name} (WATCHTOWER_CLIENT_{name.upper()}) must be positive, "
                                        f"not {getattr(self, name)}")


def from_env(**given: object) -> ClientConfig:
    """The config: each argument given (not None) wins over its WATCHTOWER_CLIENT_* variable, then the default."""
    values: dict[str, object] = {}
    for name, kind in (("url", str), ("token", str), ("batch_size", int), ("flush_interval_s", float),
                       ("max_buffer", int), ("on_full", str), ("retry_for_s", float), ("max_backoff_s", float),
                       ("timeout_s", float), ("close_timeout_s", float)):
        value = given.get(name)
        variable = "WATCHTOWER_API_TOKEN" if name == "token" else f"WATCHTOWER_CLIENT_{name.upper()}"
        if value is None and variable in os.environ:
            try:
                value = kind(os.environ[variable])
            except ValueError as exc:
                raise ClientConfigError(f"{variable}={os.environ[variable]!r} is not a valid {kind.__name__}") from exc
        if value is not None:
            values[name] = value
    values.setdefault("url", "")
    values.setdefault("token", None)
    return ClientConfig(**values)  # type: ignore[arg-type]
