"""numba's njit as the project uses it: without the GIL, compiled once per machine and cached; where nothing can be
cached (a read-only image and home), compiled afresh in each process that uses it."""

import logging
from collections.abc import Callable
from typing import Any

import numba

log = logging.getLogger(__name__)


def compiled(what: str, signature: str | None = None) -> Callable[[Any], Any]:
    """A decorator: the function compiled by numba, for `signature` at once or lazily for the types it is called
    with, cached beside its module or in numba's per-user cache. `what` names it in the log of the fallback."""
    def decorate(function: Any) -> Any:
        try:
            return numba.njit(signature, nogil=True, cache=True)(function)
        except RuntimeError:  # numba: "cannot cache function ...: no locator available"
            log.info("numba cannot cache %s here; it is compiled in this process", what)
            return numba.njit(signature, nogil=True)(function)

    return decorate
