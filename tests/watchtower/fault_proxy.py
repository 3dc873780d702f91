"""A local HTTP proxy in front of a real `watchtower serve`: forwards, answers 5xx on demand, or holds requests."""

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@dataclass(frozen=True)
class Seen:
    """One request the proxy received and what it answered."""

    at: float  # time.monotonic()
    path: str
    rows: int
    status: int


class FaultProxy:
    """Forwards POSTs to `target`; `fail_next` answers the next requests itself, `hold` keeps them waiting."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.seen: list[Seen] = []
        self._failures: deque[tuple[int, dict[str, str]]] = deque()
        self._release = threading.Event()
        self._release.set()
        self.held = threading.Event()  # set once a request is being held
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, n: int, status: int, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._failures.extend([(status, headers or {})] * n)

    def hold(self) -> None:
        self.held.clear()
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    def paths(self, status: int | None = None) -> list[str]:
        return [s.path for s in self.seen if status is None or s.status == status]

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            status, extra = failure
            problem = {"type": "about:blank", "title": "Injected", "status": status, "detail": "fault proxy"}
            return status, {"Content-Type": "application/problem+json", **extra}, json.dumps(problem).encode()
        if not self._release.is_set():
            self.held.set()
            self._release.wait(120)
        response = httpx.post(self.target + path, content=body, headers=headers, timeout=120)
        return response.status_code, {"Content-Type": response.headers.get("content-type", "")}, response.content

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                forwarded = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                status, headers, content = proxy._answer(self.path, body, forwarded)
                rows = next(iter(json.loads(body).values()), [])
                proxy.seen.append(Seen(time.monotonic(), self.path.split("?")[0], len(rows), status))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: object) -> None:
                pass  # the test reads `seen`

        return Handler
