"""Bounded bodies: refused while they arrive (before parsing, before the client finished sending), and heavy
upload work off the event loop, so /healthz answers while an upload is being processed."""

import json
import socket
import threading
from collections.abc import Iterator
from select import select as wait_readable
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from postmortems.models import Incident
from tests import factories
from tests.conftest import TOKEN
from watchtower.settings import Settings

BODY_LIMIT = 64 * 1024
UPLOAD_LIMIT = 4 * 1024 * 1024
BOUNDARY = "wtboundary"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Small limits, so the tests send megabytes rather than gigabytes."""
    return settings.model_copy(update={"max_body_bytes": BODY_LIMIT, "max_upload_bytes": UPLOAD_LIMIT})


def incidents(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Incident)).one())


def assert_too_large(response: httpx.Response, setting: str) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert setting in response.json()["detail"]


def test_a_json_body_over_the_limit_is_refused_from_its_content_length(client: TestClient, db: Engine) -> None:
    body = {"title": "t", "author": "ana", "summary": "x" * BODY_LIMIT}
    assert_too_large(client.post("/incidents", json=body), "WATCHTOWER_MAX_BODY_BYTES")
    assert client.post("/incidents", json=body | {"summary": "x" * 1000}).status_code == 201
    assert incidents(db) == 1


def test_a_chunked_json_body_is_counted_while_it_streams(client: TestClient, db: Engine) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: httpx sends it chunked
        yield b'{"title": "t", "author": "ana", "summary": "'
        for _ in range(4 * BODY_LIMIT // 1024):
            yield b"x" * 1024
        yield b'"}'

    response = client.post("/incidents", content=chunks(), headers={"Content-Type": "application/json"})
    assert_too_large(response, "WATCHTOWER_MAX_BODY_BYTES")
    assert incidents(db) == 0


def multipart_head(filename: str = "events.csv") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode()


def raw_post(url: str, path: str, headers: dict[str, str]) -> socket.socket:
    """A raw HTTP/1.1 request's head on a fresh socket; the caller sends the body (or not)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.hostname}", f"Authorization: Bearer {TOKEN}",
             *[f"{k}: {v}" for k, v in headers.items()]]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_head(sock: socket.socket) -> str:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)  # times out (and fails the test) if the server waits for the whole body
        assert chunk, "the server closed the connection without answering"
        data += chunk
    return data.decode(errors="replace")


def test_an_upload_declared_over_the_limit_is_answered_before_it_is_sent(live_server: str) -> None:
    declared = 100 * UPLOAD_LIMIT  # 400 MB
    sock = raw_post(live_server, "/models/churn/events/upload", {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": str(declared)})
    with sock:
        sock.sendall(multipart_head() + b"id,f1\n" * 1000)  # a few KB of the 100 MB announced
        head = read_head(sock)
    assert head.startswith("HTTP/1.1 413"), head
    assert "application/problem+json" in head


def test_a_chunked_upload_is_refused_once_it_passes_the_limit(live_server: str) -> None:
    sock = raw_post(live_server, "/models/churn/events/upload", {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Transfer-Encoding": "chunked"})
    planned, sent = 25 * UPLOAD_LIMIT, 0
    with sock:
        sock.sendall(b"%x\r\n%s\r\n" % (len(multipart_head()), multipart_head()))
        chunk = b"e1,0.5\n" * 9362  # 64 KiB
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        sock.settimeout(0.5)  # keep sending until the server answers or stops reading
        head = ""
        while sent < planned:
            try:
                sock.sendall(frame)
                sent += len(chunk)
                readable, _, _ = wait_readable([sock], [], [], 0.01)  # the server answered (or closed)?
                if readable:
                    break
            except (TimeoutError, BlockingIOError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(30)
        head = read_head(sock)
    assert head.startswith("HTTP/1.1 413"), head
    assert sent < planned  # refused while the client was still sending, not after all 100 MB arrived


def test_healthz_answers_while_an_upload_is_processed(live_server: str, client: TestClient,
                                                      models: factories.BuiltModels) -> None:
    factories.register_tensor(client, models)
    frame = factories.make_frame(70_000, seed=5)
    frame.insert(0, "id", [f"e{i}" for i in range(len(frame))])
    csv = frame[["id", *factories.NUMERIC]].to_csv(index=False, float_format="%.3f").encode()
    assert len(csv) < UPLOAD_LIMIT
    sent, done = threading.Event(), threading.Event()
    result: dict[str, object] = {}

    def body() -> Iterator[bytes]:
        yield multipart_head()
        for start in range(0, len(csv), 65536):
            yield csv[start:start + 65536]
        yield f"\r\n--{BOUNDARY}--\r\n".encode()
        sent.set()

    def upload() -> None:
        with httpx.Client(base_url=live_server, timeout=300) as http:
            response = http.post("/models/churn/events/upload", content=body(), headers={
                "Authorization": f"Bearer {TOKEN}", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            result["status"], result["body"] = response.status_code, response.json()
        done.set()

    thread = threading.Thread(target=upload)
    thread.start()
    assert sent.wait(120), "the upload body was not sent"
    answered_during_upload = 0
    with httpx.Client(base_url=live_server, timeout=120) as http:
        while not done.is_set():
            assert http.get("/healthz").status_code == 200
            answered_during_upload += 0 if done.is_set() else 1
    thread.join(300)
    assert result.get("status") == 200, json.dumps(result)[:500]
    assert answered_during_upload > 0  # /healthz completed while the upload was still in flight
