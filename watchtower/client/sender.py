"""One batch of rows to the server: retried with backoff on 5xx and connection errors, never on a 4xx."""

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from watchtower.client.buffer import Row

log = logging.getLogger(__name__)

# Events before stage features before labels: a label names an event that must be stored first.
ORDER = {"events": 0, "features": 1, "labels": 2}
KEYS = {"events": "events", "features": "rows", "labels": "labels"}
ROW_FIELD = re.compile(r"^body\.(?:events|rows|labels)\.(\d+)\b")


@dataclass
class Outcome:
    """What became of a batch's rows."""

    sent: int = 0
    rejected: int = 0
    failed: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)


def groups(batch: list[Row]) -> list[list[Row]]:
    """The batch split by endpoint, in the order the server needs (events, stage features, labels)."""
    by_target: dict[tuple[str, str, str | None], list[Row]] = {}
    for row in batch:
        by_target.setdefault((row.model, row.kind, row.stage), []).append(row)
    return [by_target[key] for key in sorted(by_target, key=lambda k: ORDER[k[1]])]  # stable: models keep order


def path_of(row: Row) -> str:
    model = quote(row.model, safe="")
    if row.kind == "features":
        return f"/models/{model}/stages/{quote(row.stage or '', safe='')}/features"
    return f"/models/{model}/{row.kind}"


class Sender:
    """Posts groups of rows with one httpx client (used by the sender thread only)."""

    def __init__(self, http: httpx.Client, retry_for_s: float, max_backoff_s: float, stop: threading.Event,
                 on_retry: Callable[[], None]) -> None:
        self._http, self._retry_for_s, self._max_backoff_s, self._stop = http, retry_for_s, max_backoff_s, stop
        self._on_retry = on_retry

    def send(self, rows: list[Row]) -> Outcome:
        """Post one group; on a 422 naming some rows, those are rejected and the others go in a new request."""
        outcome = Outcome()
        while rows:
            response = self._post_with_retries(rows)
            if response is None:
                outcome.failed += len(rows)
                return outcome
            if response.is_success:
                outcome.sent += len(rows)
                return outcome
            problem = _problem(response)
            outcome.problems.append(problem)
            bad = {int(m.group(1)) for e in problem.get("errors", []) if isinstance(e, dict)
                   if (m := ROW_FIELD.match(str(e.get("field", ""))))}
            if response.status_code != 422 or not bad or max(bad) >= len(rows):
                outcome.rejected += len(rows)  # the whole request was refused: not retried
                return outcome
            outcome.rejected += len(bad)  # only the rows it names: the others were refused with them
            rows = [row for i, row in enumerate(rows) if i not in bad]
        return outcome

    def _post_with_retries(self, rows: list[Row]) -> httpx.Response | None:
        """The first answer that is not a 5xx (or 429); None once retry_for_s has passed or the client stops."""
        content = f'{{"{KEYS[rows[0].kind]}":[{",".join(row.body for row in rows)}]}}'  # rows are JSON already
        deadline, attempt = time.monotonic() + self._retry_for_s, 0
        while True:
            wait_s: float | None = None
            try:
                response = self._http.post(path_of(rows[0]), content=content,
                                           headers={"Content-Type": "application/json"})
                if response.status_code < 500 and response.status_code != 429:
                    return response
                wait_s, why = _retry_after(response), f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                why = f"{type(exc).__name__}: {exc}"
            backoff = random.uniform(0, min(self._max_backoff_s, 0.1 * 2 ** attempt))  # full jitter
            wait_s = backoff if wait_s is None else wait_s
            if time.monotonic() + wait_s > deadline:
                log.error("watchtower client: giving up on %d %s rows for %s after %d attempts (%s)",
                          len(rows), rows[0].kind, rows[0].model, attempt + 1, why)
                return None
            log.warning("watchtower client: %s posting %d rows to %s; retrying in %.2f s",
                        why, len(rows), path_of(rows[0]), wait_s)
            self._on_retry()
            attempt += 1
            if self._stop.wait(wait_s):
                return None


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (delta or HTTP date), if the server sent one."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _problem(response: httpx.Response) -> dict[str, Any]:
    """The problem details of a refusal (or its status and text when the body is not JSON)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        body = {"status": response.status_code, "detail": response.text[:500]}
    body.setdefault("status", response.status_code)
    body["path"] = response.request.url.path
    return body
