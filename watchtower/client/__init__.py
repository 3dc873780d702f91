"""Report predictions, labels and stage features from a model served elsewhere (imports httpx only).

    from watchtower.client import Client
    with Client("http://watchtower:8000", token, model="churn") as client:
        event_id = client.log_prediction({"f1": 0.3}, prediction=1)
        client.log_label(event_id, 1)
"""

from watchtower.client.buffer import ClientClosed
from watchtower.client.client import Client, ClientStats
from watchtower.client.config import ClientConfig, ClientConfigError

__all__ = ["Client", "ClientClosed", "ClientConfig", "ClientConfigError", "ClientStats"]
