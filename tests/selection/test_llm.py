"""LLM class descriptions against a local OpenAI-compatible stand-in server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from mll.errors import MLLError
from mll.selection.llm import LLMDescriber


class _Handler(BaseHTTPRequestHandler):
    prompts: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.prompts.append(body["messages"][0]["content"])
        text = "- a sandal with thin straps\n2. open shoe\n\nflat sole seen from above\n"
        data = json.dumps({"choices": [{"message": {"content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_descriptions_parsed_and_cached(endpoint, monkeypatch):
    monkeypatch.setenv("MLL_LLM_URL", endpoint)
    llm = LLMDescriber.from_env()
    got = llm.describe("sandal", "a shoe with straps", "grayscale product photo")
    assert got == ["a sandal with thin straps", "open shoe", "flat sole seen from above"]
    assert "grayscale product photo" in _Handler.prompts[-1]
    calls = len(_Handler.prompts)
    llm.describe("sandal", "a shoe with straps", "grayscale product photo")
    assert len(_Handler.prompts) == calls
    assert LLMDescriber.from_env() is llm


def test_unset_means_templates_and_errors_are_clear(monkeypatch):
    monkeypatch.delenv("MLL_LLM_URL", raising=False)
    assert LLMDescriber.from_env() is None
    broken = LLMDescriber("http://127.0.0.1:9/v1", "m", timeout=2)
    with pytest.raises(MLLError, match="unset MLL_LLM_URL"):
        broken.describe("cat", "a feline", "")
