"""/docs without the internet and under the CSP: Swagger UI's files come from the swagger-ui-py package and
are served from /static/swagger; the page has no inline script (its start-up is /static/docs.js)."""

import importlib.util
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Watchtower API</title>
  <link rel="icon" type="image/png" href="/static/swagger/favicon-32x32.png">
  <link rel="stylesheet" href="/static/swagger/swagger-ui.css">
</head>
<body data-openapi="/openapi.json">
  <div id="swagger-ui"></div>
  <script src="/static/swagger/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""


def swagger_assets() -> Path:
    """swagger-ui-py's static folder, found without importing the package (its import pulls in web frameworks'
    adapters we do not use)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: /docs needs it (pip install swagger-ui-py)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@router.get("/docs", response_class=HTMLResponse)
def docs() -> HTMLResponse:
    """Interactive API docs (Swagger UI), served entirely by this server."""
    return HTMLResponse(PAGE)
