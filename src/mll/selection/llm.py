"""Class descriptions from a language model behind an OpenAI-compatible chat endpoint (optional).

P2 describes each class with about ten LLM-written captions that use the task's domain words. mll
does so when the user configures an endpoint (``MLL_LLM_URL``, e.g. ``http://127.0.0.1:8000/v1``,
with ``MLL_LLM_MODEL`` and optionally ``MLL_LLM_API_KEY``); otherwise P2 uses its templates.

The endpoint is someone else's server, so every answer is distrusted: one answer (retries
included) has an overall deadline, ``Limits.llm_deadline_seconds``, enforced by a watchdog that
cuts the connection, because a per-read timeout never fires on a server that trickles a byte at a
time. Connection failures, 5xx and 429 are retried with exponential backoff; the answer's size and
JSON shape are checked. What still fails raises :class:`~mll.errors.ExternalServiceError`, which P2
turns into template descriptions plus a warning in the selection; a malformed ``MLL_LLM_URL`` is a
configuration mistake and raises :class:`~mll.errors.InvalidParameterError`. Only the standard
library is used, and answers are cached per process.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache

from .. import limits
from ..errors import ExternalServiceError, InvalidParameterError

PROMPT = ("Write {n} short, different descriptions of what a {name} ({gloss}) looks like in {domain}."
          " One description per line, no numbering, no other text.")
MAX_ANSWER_BYTES = 4 * 1024**2  # ten one-line descriptions are a few kB
RETRIES = 3  # after the first attempt, for connection failures, 5xx and 429
BACKOFF_SECONDS = 0.5  # first wait; doubled after each retry, never past the deadline
DOWN_SECONDS = 300.0  # after a failed answer, later calls fail fast for this long
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class _Transient(Exception):
    """A failure worth retrying (connection dropped or refused, 5xx, 429)."""


def check_url(url: str) -> urllib.parse.SplitResult:
    """``url`` split, or a configuration error saying what an endpoint URL looks like."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameterError(
            f"MLL_LLM_URL={url!r} is not an http(s) URL like http://127.0.0.1:8000/v1; fix it or "
            "unset it to use template descriptions")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise InvalidParameterError(f"MLL_LLM_URL={url!r} has a malformed port") from None
    return parts


@dataclass
class LLMDescriber:
    """``describe`` a class through the endpoint at ``url``; ``timeout`` overrides the limit on
    seconds per answer (retries included)."""

    url: str
    model: str
    api_key: str = ""
    n: int = 10
    timeout: float | None = None
    _cache: dict[tuple[str, str, str], list[str]] = field(default_factory=dict, repr=False)
    _down: tuple[float, str] | None = field(default=None, repr=False)  # (until, reason)

    def __post_init__(self) -> None:
        self._parts = check_url(self.url)

    @classmethod
    def from_env(cls) -> LLMDescriber | None:
        url = os.environ.get("MLL_LLM_URL", "").strip()
        if not url:
            return None  # a malformed URL is refused by __post_init__, never cached
        return _shared(cls, url.rstrip("/"), os.environ.get("MLL_LLM_MODEL", "default"),
                       os.environ.get("MLL_LLM_API_KEY", ""))

    def describe(self, name: str, gloss: str, domain: str) -> list[str]:
        """Up to ``n`` descriptions; :class:`ExternalServiceError` when the endpoint fails."""
        key = (name, gloss, domain)
        if key not in self._cache:
            prompt = PROMPT.format(n=self.n, name=name, gloss=gloss, domain=domain or "photos")
            lines = [re.sub(r"^\s*(?:\d+[.)]|[-*•])\s*", "", ln).strip()
                     for ln in self._chat(prompt).splitlines()]
            self._cache[key] = [ln for ln in lines if ln][: self.n] or [name]
        return self._cache[key]

    # -- one answer -----------------------------------------------------------------------------
    def _chat(self, prompt: str) -> str:
        if self._down is not None and time.monotonic() < self._down[0]:
            raise self._error(self._down[1])
        try:
            return _content(self._request(prompt))
        except ExternalServiceError as exc:
            self._down = (time.monotonic() + DOWN_SECONDS, exc.args[0])
            raise self._error(exc.args[0]) from None

    def _error(self, reason: str) -> ExternalServiceError:
        return ExternalServiceError(f"the language model at {self.url} gave no usable answer "
                                    f"({reason}); unset MLL_LLM_URL to use template descriptions")

    def _request(self, prompt: str) -> bytes:
        """The answer body, retried on transient failures until the overall deadline."""
        deadline_s = self.timeout if self.timeout is not None else (
            limits.current().llm_deadline_seconds)
        deadline = time.monotonic() + deadline_s
        body = json.dumps({"model": self.model, "temperature": 0,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        wait, last = BACKOFF_SECONDS, ""
        for attempt in range(RETRIES + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                return self._post(body, remaining)
            except _Transient as exc:
                last = str(exc)
            if attempt < RETRIES:
                time.sleep(max(0.0, min(wait, deadline - time.monotonic())))
                wait *= 2
        if time.monotonic() >= deadline:
            raise ExternalServiceError(
                f"no complete answer within {deadline_s:g} s (MLL_LLM_DEADLINE_SECONDS)"
                + (f"; last failure: {last}" if last else ""))
        raise ExternalServiceError(f"{last}, after {RETRIES + 1} attempts")

    def _post(self, body: bytes, remaining: float) -> bytes:
        """One POST; a watchdog shuts the socket down when ``remaining`` seconds have passed."""
        parts = self._parts
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = kind(parts.hostname, parts.port, timeout=remaining)
        expired = threading.Event()
        sockets: list[socket.socket] = []  # kept here: http.client drops conn.sock mid-answer

        def cut() -> None:
            expired.set()
            for sock in sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked read with end-of-file
                except OSError:
                    pass

        watchdog = threading.Timer(remaining, cut)
        watchdog.daemon = True
        watchdog.start()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            conn.connect()  # bounded by the socket timeout, which is at most ``remaining``
            sockets.append(conn.sock)
            if expired.is_set():
                cut()
            conn.request("POST", f"{parts.path.rstrip('/')}/chat/completions", body, headers)
            response = conn.getresponse()
            status, data = response.status, bytearray()
            while len(data) <= MAX_ANSWER_BYTES:
                chunk = response.read(min(65536, MAX_ANSWER_BYTES + 1 - len(data)))
                if not chunk:
                    break
                data += chunk
            if len(data) <= MAX_ANSWER_BYTES and response.length:  # promised, never sent
                raise http.client.IncompleteRead(bytes(data), response.length)
        except (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError,
                TimeoutError) as exc:
            if expired.is_set():
                raise _Transient("the deadline cut the connection") from None
            raise _Transient(_describe_exc(exc)) from None
        except socket.gaierror:
            raise ExternalServiceError(f"cannot resolve the host {parts.hostname!r}") from None
        except (http.client.HTTPException, OSError) as exc:
            if expired.is_set():
                raise _Transient("the deadline cut the connection") from None
            raise ExternalServiceError(f"not an HTTP answer: {_describe_exc(exc)}") from None
        finally:
            watchdog.cancel()
            conn.close()
        if len(data) > MAX_ANSWER_BYTES:
            raise ExternalServiceError(f"answer larger than {MAX_ANSWER_BYTES:,} bytes")
        data = bytes(data)
        if status in TRANSIENT_STATUS:
            raise _Transient(f"HTTP {status}")
        if not 200 <= status < 300:
            raise ExternalServiceError(f"HTTP {status}: {_snippet(data)}")
        return data


def _content(data: bytes) -> str:
    """The first choice's message text of a chat-completion answer, or what is wrong with it."""
    try:
        answer = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise ExternalServiceError(f"the answer is not JSON: {_snippet(data)}") from None
    if not isinstance(answer, dict):
        raise ExternalServiceError(f"the answer is a JSON {type(answer).__name__}, not an object "
                                   "with 'choices'")
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ExternalServiceError(f"the answer has no list of 'choices' (got {_kind(choices)})")
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise ExternalServiceError(f"choices[0].message.content is {_kind(content)}, not text")
    return content


def _kind(value) -> str:
    return "missing" if value is None else f"a {type(value).__name__} {_snippet(value)}"


def _snippet(value, width: int = 80) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _describe_exc(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return f"the connection closed after {len(exc.partial)} bytes of the answer"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.BadStatusLine):
        return f"bad status line {_snippet(str(exc))}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@lru_cache(maxsize=4)
def _shared(cls, url: str, model: str, api_key: str) -> LLMDescriber:
    """One describer (and answer cache) per configured endpoint."""
    return cls(url, model, api_key)
