"""How served graphs run: the session options every loaded model gets."""

import numpy as np
import onnxruntime as ort

from tests import factories
from watchtower.serving.onnx_model import load


def test_served_sessions_do_not_spin_between_runs_and_score_as_the_defaults(models: factories.BuiltModels) -> None:
    """Intra-op threads block between runs (a spinning pool kept a core busy after every predict); the scores are
    those of a session with onnxruntime's defaults."""
    schema = dict.fromkeys(factories.NUMERIC, "numeric")
    model = load(models.tensor_primary, schema)
    assert model.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    frame = models.reference[factories.NUMERIC].head(300)
    default = ort.InferenceSession(models.tensor_primary, providers=["CPUExecutionProvider"])
    labels, scores = model.predict_scores(frame)
    expected = default.run(None, {default.get_inputs()[0].name: frame.to_numpy(np.float32)})
    assert labels == expected[0].tolist()
    assert scores is not None
    assert np.allclose(scores, np.asarray(expected[1]))
