"""In-process cache of loaded ONNX sessions, keyed by (model id, sha256 of the graph).

Content-addressed on purpose: a row id can be reused after a rolled-back insert, a hash cannot lie.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from watchtower import heap
from watchtower.registry.models import ModelVersion

if TYPE_CHECKING:  # onnxruntime and pandas load with the first model, not at the app's start-up
    from watchtower.serving.onnx_model import OnnxModel

Key = tuple[int, str]


class SessionCache:
    """Loads each graph once; the lock keeps two requests from loading it twice."""

    def __init__(self) -> None:
        self._models: dict[Key, OnnxModel] = {}
        self._lock = threading.Lock()

    def put(self, model_id: int, sha256: str, model: OnnxModel) -> None:
        """Keep a model loaded at registration, so the first prediction (or swap) loads nothing."""
        with self._lock:
            self._models[(model_id, sha256)] = model
        heap.settle("onnx")

    def loaded(self, model_id: int, sha256: str, schema: dict[str, str]) -> OnnxModel | None:
        """The graph if it is loaded for this schema, else None (get reads the database)."""
        model = self._models.get((model_id, sha256))
        return model if model is not None and model.schema == schema else None

    def get(self, engine: Engine, model_id: int, sha256: str, schema: dict[str, str]) -> OnnxModel:
        """The loaded graph, read from the database on first use."""
        key = (model_id, sha256)
        model = self.loaded(model_id, sha256, schema)
        if model is not None:
            return model
        with self._lock:  # not loaded yet, or loaded for the schema before a new version changed it
            if key not in self._models or self._models[key].schema != schema:
                with Session(engine) as session:
                    data = session.exec(select(ModelVersion.onnx).where(
                        ModelVersion.model_id == model_id, ModelVersion.sha256 == sha256)).first()
                    if data is None:
                        raise LookupError(f"no ONNX graph {sha256} for model {model_id}")
                    from watchtower.serving.onnx_model import load

                    self._models[key] = load(data, schema)
            loaded = self._models[key]
        heap.settle("onnx")
        return loaded
