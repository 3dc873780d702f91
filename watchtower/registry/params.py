"""The routes' path parameters for models, pipelines and monitors: here, not in schemas.py, so the services (and
`watchtower monitor`) load the registry's schemas without FastAPI."""

from typing import Annotated

from fastapi import Path

from watchtower.registry.schemas import NAME

# Path parameters obey the same pattern as the names in bodies, so a lookup never sends the database a string
# it could not have stored (too long, or with NUL), and a PUT cannot create what a body could not.
ModelName = Annotated[str, Path(pattern=NAME, description="A model's name")]
PipelineName = Annotated[str, Path(pattern=NAME, description="A pipeline's name")]
MonitorName = Annotated[str, Path(pattern=NAME, description="A monitor's name")]
