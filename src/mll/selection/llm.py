"""Class descriptions from a language model behind an OpenAI-compatible chat endpoint (optional).

P2 describes each class with about ten LLM-written captions that use the task's domain words. mll
does so when the user configures an endpoint (``MLL_LLM_URL``, e.g. ``http://127.0.0.1:8000/v1``,
with ``MLL_LLM_MODEL`` and optionally ``MLL_LLM_API_KEY``); otherwise P2 uses its templates.
Only the standard library is used, and answers are cached per process.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache

from ..errors import ExternalServiceError

PROMPT = ("Write {n} short, different descriptions of what a {name} ({gloss}) looks like in {domain}."
          " One description per line, no numbering, no other text.")


@dataclass
class LLMDescriber:
    url: str
    model: str
    api_key: str = ""
    n: int = 10
    timeout: float = 60.0
    _cache: dict[tuple[str, str, str], list[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls) -> LLMDescriber | None:
        url = os.environ.get("MLL_LLM_URL", "").strip()
        if not url:
            return None
        return _shared(cls, url.rstrip("/"), os.environ.get("MLL_LLM_MODEL", "default"),
                       os.environ.get("MLL_LLM_API_KEY", ""))

    def describe(self, name: str, gloss: str, domain: str) -> list[str]:
        key = (name, gloss, domain)
        if key not in self._cache:
            prompt = PROMPT.format(n=self.n, name=name, gloss=gloss, domain=domain or "photos")
            lines = [re.sub(r"^\s*(?:\d+[.)]|[-*•])\s*", "", ln).strip()
                     for ln in self._chat(prompt).splitlines()]
            self._cache[key] = [ln for ln in lines if ln][: self.n] or [name]
        return self._cache[key]

    def _chat(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(f"{self.url}/chat/completions", data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
            return answer["choices"][0]["message"]["content"]
        except (urllib.error.URLError, TimeoutError, KeyError, IndexError, ValueError) as exc:
            raise ExternalServiceError(f"the language model at {self.url} gave no usable answer ({exc}); "
                           "unset MLL_LLM_URL to use template descriptions") from None


@lru_cache(maxsize=4)
def _shared(cls, url: str, model: str, api_key: str) -> LLMDescriber:
    """One describer (and answer cache) per configured endpoint."""
    return cls(url, model, api_key)
