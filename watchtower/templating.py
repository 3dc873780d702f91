"""The pages' Jinja2 templates, built by the first page that renders: Jinja2 stays out of the app's start-up."""

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates


@cache
def templates(*directories: Path) -> "Jinja2Templates":
    """One template set per search path (the first directory wins), shared by every page using that path."""
    from fastapi.templating import Jinja2Templates

    return Jinja2Templates(directory=list(directories))
