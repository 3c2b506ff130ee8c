"""A judge behind an OpenAI-compatible chat completions server (vLLM, llama.cpp server, ...).

Standard library only: a 72B judge runs on its own server, the trainer only sends requests.
Same prompts and both-orders rule as the local ``VLMJudge``.
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import math
import time
import urllib.error
import urllib.parse
from typing import TYPE_CHECKING

from t2i_sdk.errors import InputError, T2IError

from t2i_training.judges.http_transport import ResponseTooLarge, post
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
DEFAULT_MAX_RESPONSE_BYTES = 1 << 20  # a verdict is a few tokens; 1 MiB is far more than enough
_PROBE_IMAGE_SIDE = 8


class JudgeServerError(T2IError, RuntimeError):
    """The judge server refused the request (4xx), stayed unreachable or too slow after every
    retry, or answered with something that is not a chat completion.

    Not turned into a tie: a misconfigured or dead server would otherwise silently produce a
    round of all-tie preferences, i.e. no training signal, instead of a clear failure. A
    :class:`T2IError`, so ``t2i-train`` prints it as one line and exits 2.
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

    Each request (connect, headers and body together) gets at most ``timeout_s`` seconds and a
    reply of at most ``max_response_bytes``. Connection errors, timeouts, 429 and 5xx are
    retried up to ``retries`` more times, sleeping ``backoff_s * 2**k`` s before retry k; if
    every attempt fails, the server answers another 4xx, a reply is over the size cap or is not
    a chat completion at all, :class:`JudgeServerError` is raised. A chat completion whose text
    cannot be read as "1", "2" or "tie" is an unparsed tie. :meth:`check` asks one question, to
    find a dead or misconfigured server before hours of work depend on it.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 timeout_s: float = 30, retries: int = 3, backoff_s: float = 0.5,
                 max_tokens: int = 8, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES):
        _check_settings(base_url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s,
                        max_tokens=max_tokens, max_response_bytes=max_response_bytes)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = float(timeout_s)
        self.retries = retries
        self.backoff_s = float(backoff_s)
        self.max_tokens = max_tokens
        self.max_response_bytes = max_response_bytes

    def compare(self, prompt: str, a: Sample, b: Sample, dimension: str) -> Verdict:
        """+1 if both image orders prefer ``a``, -1 if both prefer ``b``, else 0 (a tie)."""
        check_dimension(dimension)
        url_a, url_b = image_data_url(a.image), image_data_url(b.image)
        first = self.ask(prompt, url_a, url_b, dimension)
        swapped = self.ask(prompt, url_b, url_a, dimension)
        vote, parsed = vote_from_both_orders(parse_answer(first), parse_answer(swapped))
        return Verdict(vote, parsed, raw=f"A|B: {first!r}; B|A: {swapped!r}")

    def check(self) -> str:
        """Ask one question about two tiny gray images; returns the reply text (any text: the
        point is that the server answers with a chat completion). Raises
        :class:`JudgeServerError` like :meth:`compare` would."""
        from PIL import Image as PILImage

        url = image_data_url(PILImage.new("RGB", (_PROBE_IMAGE_SIDE,) * 2, (128, 128, 128)))
        return self.ask("a gray square", url, url, "quality")

    def ask(self, prompt: str, image1_url: str, image2_url: str, dimension: str) -> str:
        """The server's reply text, stripped, or ``<unreadable response: ...>`` (never parses)
        when the chat completion holds no text."""
        body = {
            "model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
            "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": image1_url}},
                {"type": "image_url", "image_url": {"url": image2_url}},
                {"type": "text", "text": judge_question(prompt, dimension)}]}],
        }
        return self._reply_text(self._post(body))

    def _post(self, body: dict) -> bytes:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last_error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                return post(self.url, data, headers, timeout_s=self.timeout_s,
                            max_bytes=self.max_response_bytes)
            except urllib.error.HTTPError as err:  # before OSError: it is a subclass
                detail = getattr(err, "detail", "")
                if err.code not in RETRY_STATUS:
                    raise JudgeServerError(f"judge server {self.url} answered HTTP {err.code}: "
                                           f"{detail}") from None
                last_error = f"HTTP {err.code}: {detail}"
            except ResponseTooLarge as err:
                raise JudgeServerError(f"judge server {self.url}: {err} (max_response_bytes)"
                                       ) from None
            except (OSError, http.client.HTTPException, ValueError) as err:
                reason = getattr(err, "reason", err)
                last_error = f"{type(reason).__name__}: {reason}"
        raise JudgeServerError(f"judge server {self.url} failed {self.retries + 1} attempts "
                               f"(timeout {self.timeout_s:g} s each); last error: {last_error}")

    def _reply_text(self, payload: bytes) -> str:
        """``choices[0].message.content`` of a chat completion, stripped; a marker that keeps
        the start of the payload for the round report when the message holds no text. A
        payload that is no chat completion at all (HTML, an error object, no choices) means a
        wrong URL or a broken server: :class:`JudgeServerError`."""
        try:
            message = json.loads(payload)["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError("message is not an object")
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            raise JudgeServerError(f"judge server {self.url} did not answer with a chat "
                                   f"completion: {payload[:200]!r}") from None
        content = message.get("content")
        if not isinstance(content, str):
            return f"<unreadable response: {payload[:200]!r}>"
        return content.strip()


def _check_settings(base_url, *, timeout_s, retries, backoff_s, max_tokens,
                    max_response_bytes) -> None:
    """Raise :class:`InputError` naming every bad setting."""
    problems = []
    if not isinstance(base_url, str) or urllib.parse.urlsplit(base_url).scheme not in (
            "http", "https") or not urllib.parse.urlsplit(base_url).netloc:
        problems.append(f"base_url={base_url!r} (want http://host:port/v1 or https://...)")
    if not _is_number(timeout_s) or not math.isfinite(timeout_s) or timeout_s <= 0:
        problems.append(f"timeout_s={timeout_s!r} (want a finite number of seconds > 0)")
    if not _is_number(backoff_s) or not math.isfinite(backoff_s) or backoff_s < 0:
        problems.append(f"backoff_s={backoff_s!r} (want a finite number of seconds >= 0)")
    if not _is_int(retries) or retries < 0:
        problems.append(f"retries={retries!r} (want an integer >= 0)")
    if not _is_int(max_tokens) or max_tokens < 1:
        problems.append(f"max_tokens={max_tokens!r} (want an integer >= 1)")
    if not _is_int(max_response_bytes) or max_response_bytes < 1:
        problems.append(f"max_response_bytes={max_response_bytes!r} (want an integer >= 1)")
    if problems:
        raise InputError("bad HTTP judge settings: " + "; ".join(problems))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
