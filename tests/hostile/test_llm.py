"""An LLM endpoint that misbehaves: shape checks, an overall deadline, retries, a stated fallback.

Each test starts a real local HTTP server (``http.server`` in a thread) that fails in one way.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from mll.errors import ExternalServiceError, InvalidParameterError
from mll.selection import llm as llm_module
from mll.selection.llm import LLMDescriber
from mll.selection.methods.p2 import TEMPLATES, describe

contract = pytest.mark.contract
GOOD = {"choices": [{"message": {"content": "a sandal with straps\nan open shoe"}}]}


class _Server:
    """A chat endpoint whose answer to the n-th request is ``script(n, handler)``."""

    def __init__(self, script) -> None:
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers["Content-Length"]))
                server.requests += 1
                script(server.requests, self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _send(handler, status: int, payload) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def serve(monkeypatch):
    """``serve(script)`` -> a running server; small deadline and backoff keep every test fast."""
    monkeypatch.setenv("MLL_LLM_DEADLINE_SECONDS", "3")
    monkeypatch.setattr(llm_module, "BACKOFF_SECONDS", 0.05)
    servers = []

    def start(script):
        servers.append(_Server(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _ask(url: str) -> list[str]:
    return LLMDescriber(url, "m").describe("sandal", "a light shoe", "photos")


@contract("LLM endpoint", "answers that are a JSON list, a string 'choices', null or numeric "
          "content, or not JSON", "error naming what is wrong with the answer; not retried")
@pytest.mark.parametrize("payload, reason", [
    ([1, 2], "the answer is a JSON list, not an object"),
    ({"choices": "abc"}, "no list of 'choices' \\(got a str 'abc'\\)"),
    ({"choices": [{"message": {"content": None}}]}, "content is missing, not text"),
    ({"choices": [{"message": {"content": 7}}]}, "content is a int 7, not text"),
    (b"<html>busy</html>", "the answer is not JSON: <html>busy</html>")])
def test_malformed_answers(serve, payload, reason):
    server = serve(lambda n, h: _send(h, 200, payload))
    with pytest.raises(ExternalServiceError, match=reason):
        _ask(server.url)
    assert server.requests == 1


def _drop(n, handler):
    handler.close_connection = True  # read the request, answer nothing


def _truncated(n, handler):
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b'{"choices": [')
    handler.close_connection = True


@contract("LLM endpoint", "a connection dropped before answering, or mid-body (incomplete body)",
          "retried with backoff, then a clear error naming the failure")
@pytest.mark.parametrize("script, reason", [
    (_drop, "closed the connection without answering"),
    (_truncated, "the connection closed after 13 bytes of the answer")])
def test_dropped_connections_are_retried(serve, script, reason):
    server = serve(script)
    with pytest.raises(ExternalServiceError, match=f"{reason}, after 4 attempts"):
        _ask(server.url)
    assert server.requests == 1 + llm_module.RETRIES


@contract("LLM endpoint", "a bad HTTP status line", "error: not an HTTP answer; not retried")
def test_bad_status_line(serve):
    def script(n, handler):
        handler.wfile.write(b"HTPT/9 sure thing\r\n\r\n")
        handler.close_connection = True

    server = serve(script)
    with pytest.raises(ExternalServiceError, match="not an HTTP answer: bad status line"):
        _ask(server.url)
    assert server.requests == 1


@contract("LLM endpoint", "HTTP 503 twice, then 429, then a good answer",
          "retried with exponential backoff; the good answer is used")
def test_transient_statuses_then_success(serve):
    server = serve(lambda n, h: _send(h, {1: 503, 2: 503, 3: 429}.get(n, 200),
                                      GOOD if n > 3 else {"error": "busy"}))
    assert _ask(server.url) == ["a sandal with straps", "an open shoe"]
    assert server.requests == 4


@contract("LLM endpoint", "HTTP 401 (a wrong API key)", "error with the status and the server's "
          "words; not retried")
def test_client_error_not_retried(serve):
    server = serve(lambda n, h: _send(h, 401, {"error": "bad key"}))
    with pytest.raises(ExternalServiceError, match='HTTP 401: {"error": "bad key"}'):
        _ask(server.url)
    assert server.requests == 1


@contract("LLM endpoint", "a server that trickles one byte at a time, forever",
          "cut at the overall deadline (MLL_LLM_DEADLINE_SECONDS), not per read")
def test_trickling_server_hits_the_overall_deadline(serve, monkeypatch):
    monkeypatch.setenv("MLL_LLM_DEADLINE_SECONDS", "1.5")

    def trickle(n, handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        try:
            for _ in range(200):  # a byte every 0.2 s: each read alone is quick
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    server = serve(trickle)
    start = time.perf_counter()
    with pytest.raises(ExternalServiceError, match=r"no complete answer within 1.5 s"):
        _ask(server.url)
    assert time.perf_counter() - start < 3.0


@contract("LLM endpoint", "an answer larger than 4 MB", "refused, not read into memory further")
def test_oversized_answer(serve, monkeypatch):
    monkeypatch.setattr(llm_module, "MAX_ANSWER_BYTES", 1000)
    server = serve(lambda n, h: _send(h, 200, {"choices": [{"message": {"content": "x" * 5000}}]}))
    with pytest.raises(ExternalServiceError, match="answer larger than 1,000 bytes"):
        _ask(server.url)


@contract("LLM endpoint", "MLL_LLM_URL=notaurl (or no host, or a bad port)",
          "configuration error naming the variable and an example URL")
@pytest.mark.parametrize("url", ["notaurl", "http://", "ftp://127.0.0.1/v1", "http://h:99999x/v1"])
def test_malformed_url_is_a_configuration_error(monkeypatch, url):
    monkeypatch.setenv("MLL_LLM_URL", url)
    with pytest.raises(InvalidParameterError, match="MLL_LLM_URL="):
        LLMDescriber.from_env()


@contract("LLM endpoint", "an endpoint that fails while P2 describes the classes",
          "P2 falls back to template descriptions and the selection says why, once; later "
          "classes fail fast")
def test_p2_falls_back_to_templates_with_a_note(serve, monkeypatch):
    server = serve(lambda n, h: _send(h, 500, b"oops"))
    monkeypatch.setenv("MLL_LLM_URL", server.url)
    notes: list[str] = []
    table = SimpleNamespace(graph=None)
    first = describe(table, "sandal", None, "", notes)
    second = describe(table, "sneaker", None, "", notes)
    assert first == [t.format(name="sandal", gloss="sandal", parent="object", lemmas="sandal",
                              domain="photo") for t in TEMPLATES if "{domain}" not in t]
    assert second[0] == "a photo of a sneaker."
    assert len(notes) == 1 and "P2 used template descriptions" in notes[0]
    assert server.url in notes[0] and "HTTP 500" in notes[0]
    assert server.requests == 1 + llm_module.RETRIES  # the second class did not wait again
