"""A judge behind an OpenAI-compatible chat completions server (vLLM, llama.cpp server, ...).

Standard library only: a 72B judge runs on its own server, the trainer only sends requests.
Same prompts and both-orders rule as the local ``VLMJudge``.
"""
from __future__ import annotations

import base64
import io
import json
import socket
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from t2i_training.judges.prompts import (
    check_dimension,
    judge_question,
    parse_answer,
    vote_from_both_orders,
)
from t2i_training.judges.protocol import Sample, Verdict

if TYPE_CHECKING:
    from PIL.Image import Image

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})  # overloaded or restarting: try again


class JudgeServerError(RuntimeError):
    """The judge server refused the request (4xx) or stayed unreachable after every retry.

    Not turned into a tie: a misconfigured or dead server would otherwise silently produce a
    round of all-tie preferences, i.e. no training signal, instead of a clear failure.
    """


def image_data_url(image: Image) -> str:
    """PNG-encode ``image`` as a ``data:image/png;base64,...`` URL (lossless, so judges see
    exactly what the T2I model produced)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class HTTPJudge:
    """Pairwise judge on ``{base_url}/chat/completions`` (``base_url`` like
    ``http://127.0.0.1:8000/v1``), greedy (temperature 0), answer of at most ``max_tokens``.

    Each request waits at most ``timeout_s`` seconds. Connection errors, timeouts, 429 and 5xx
    are retried up to ``retries`` more times, sleeping ``backoff_s * 2**k`` s before retry k;
    if every attempt fails, or the server answers another 4xx, :class:`JudgeServerError` is
    raised. A reply that arrives but cannot be read as "1", "2" or "tie" is an unparsed tie.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 timeout_s: float = 30, retries: int = 3, backoff_s: float = 0.5,
                 max_tokens: int = 8):
        if timeout_s <= 0 or retries < 0 or backoff_s < 0 or max_tokens < 1:
            raise ValueError(f"bad HTTP judge settings: timeout_s={timeout_s}, retries={retries}, "
                             f"backoff_s={backoff_s}, max_tokens={max_tokens}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_tokens = max_tokens

    def compare(self, prompt: str, a: Sample, b: Sample, dimension: str) -> Verdict:
        """+1 if both image orders prefer ``a``, -1 if both prefer ``b``, else 0 (a tie)."""
        check_dimension(dimension)
        url_a, url_b = image_data_url(a.image), image_data_url(b.image)
        first = self.ask(prompt, url_a, url_b, dimension)
        swapped = self.ask(prompt, url_b, url_a, dimension)
        vote, parsed = vote_from_both_orders(parse_answer(first), parse_answer(swapped))
        return Verdict(vote, parsed, raw=f"A|B: {first!r}; B|A: {swapped!r}")

    def ask(self, prompt: str, image1_url: str, image2_url: str, dimension: str) -> str:
        """The server's reply text, stripped, or ``<unreadable response: ...>`` (never parses)."""
        body = {
            "model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
            "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": image1_url}},
                {"type": "image_url", "image_url": {"url": image2_url}},
                {"type": "text", "text": judge_question(prompt, dimension)}]}],
        }
        return _reply_text(self._post(body))

    def _post(self, body: dict) -> bytes:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return response.read()
            except urllib.error.HTTPError as err:  # before URLError: it is a subclass
                detail = err.read()[:300].decode("utf-8", "replace")
                if err.code not in RETRY_STATUS:
                    raise JudgeServerError(f"judge server {self.url} answered HTTP {err.code}: "
                                           f"{detail}") from err
                last_error = f"HTTP {err.code}: {detail}"
            except (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError) as err:
                reason = getattr(err, "reason", err)
                last_error = f"{type(reason).__name__}: {reason}"
        raise JudgeServerError(f"judge server {self.url} failed {self.retries + 1} attempts "
                               f"(timeout {self.timeout_s} s each); last error: {last_error}")


def _reply_text(payload: bytes) -> str:
    """``choices[0].message.content`` of a chat completion, stripped; a marker that keeps the
    start of the payload for the round report when it is not one."""
    try:
        content = json.loads(payload)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        return f"<unreadable response: {payload[:200]!r}>"
    return content.strip()
