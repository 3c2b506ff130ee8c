"""Judges: answer parsing, the programmatic judge, the tiny Qwen2.5-VL judge, the HTTP judge."""
from __future__ import annotations

import base64
import io
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from fakes import server_url, serving

from t2i_training.judges import (
    REWARD_DIMENSIONS,
    HTTPJudge,
    JudgeServerError,
    ProgrammaticJudge,
    Sample,
    Verdict,
    keeps_objects_adds_color,
)
from t2i_training.judges.prompts import judge_question, parse_answer, vote_from_both_orders

RED = Sample("a red cup", Image.new("RGB", (32, 32), (255, 0, 0)))
BLUE = Sample("a blue cup", Image.new("RGB", (32, 32), (0, 0, 255)))


# --- prompts and the both-orders rule ---------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("1", 1), ("2", 2), ("tie", 0), (" Tie. ", 0), ('"2"', 2), ("Image 1", 1),
    ("12", None), ("1 or 2", None), ("the first", None), ("", None), ("tied", None),
])
def test_parse_answer_is_strict(raw, expected):
    assert parse_answer(raw) == expected


def test_vote_needs_both_orders_to_agree():
    assert vote_from_both_orders(1, 2) == (1, True)  # A first, then A second: A wins
    assert vote_from_both_orders(2, 1) == (-1, True)
    assert vote_from_both_orders(1, 1) == (0, True)  # position bias: always "Image 1"
    assert vote_from_both_orders(0, 2) == (0, True)
    assert vote_from_both_orders(None, 2) == (0, False)


def test_judge_question_names_dimension_prompt_and_answer_format():
    text = judge_question("two dogs on a beach", "physical_alignment")
    assert "two dogs on a beach" in text and "spatial relations" in text
    assert "Image 1" in text and "Image 2" in text and '"tie"' in text
    with pytest.raises(ValueError, match="unknown reward dimension"):
        judge_question("x", "vibes")


# --- programmatic judge -----------------------------------------------------------------------

def test_programmatic_judge_votes_by_score():
    judge = ProgrammaticJudge(lambda prompt, s: len(s.text))
    long, short = Sample("a much longer rewrite", None), Sample("short", None)
    assert judge.compare("p", long, short, "quality") == Verdict(1, True, "21 vs 5")
    assert judge.compare("p", short, long, "aesthetics").vote == -1
    assert judge.compare("p", short, Sample("other", None), "quality").vote == 0  # equal length


def test_programmatic_judge_ties_within_eps_and_per_dimension_scorers():
    judge = ProgrammaticJudge(lambda p, s: 1.0 if s is RED else 1.05, eps=0.1)
    assert judge.compare("p", RED, BLUE, "quality").vote == 0
    per_dim = ProgrammaticJudge({"quality": lambda p, s: s is RED,
                                 "aesthetics": lambda p, s: s is BLUE})
    assert per_dim.compare("p", RED, BLUE, "quality").vote == 1
    assert per_dim.compare("p", RED, BLUE, "aesthetics").vote == -1
    with pytest.raises(ValueError, match="no scorer"):
        per_dim.compare("p", RED, BLUE, "general_alignment")


def _score(prompt: str, text: str) -> float:
    return keeps_objects_adds_color(prompt, Sample(text, None))


def test_keeps_objects_adds_color_scores_known_texts():
    prompt = "a cat and a dog"
    assert _score(prompt, "a cat and a dog") == 2  # both kept, no new color
    assert _score(prompt, "an orange cat and two brown dogs in a park") == 3  # plural kept
    assert _score(prompt, "a cat") == 1
    assert _score(prompt, "a category of hotdogs") == 0  # whole words only
    assert _score(prompt, "a purple bird") == 1  # objects lost, color added
    assert _score("a red car", "a red car on a street") == 1  # red was already asked for
    assert _score("a red car", "a red car under a blue sky") == 2


def test_keeps_objects_adds_color_prefers_the_faithful_colorful_rewrite():
    judge = ProgrammaticJudge(keeps_objects_adds_color)
    good = Sample("a photo of a yellow cat next to a dog", None)
    drifted = Sample("a photo of a yellow bird", None)
    assert judge.compare("a cat next to a dog", good, drifted, "general_alignment").vote == 1


# --- local VLM judge on a tiny random Qwen2.5-VL ----------------------------------------------

@pytest.fixture(scope="module")
def tiny_vlm_judge(tmp_path_factory):
    pytest.importorskip("torch")
    from t2i_training.judges.tiny_vlm import build_tiny_qwen2_5_vl
    from t2i_training.judges.vlm import VLMJudge

    model_dir = build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("vlm") / "tiny", seed=0)
    return VLMJudge(model_dir, device="cpu", max_new_tokens=4)


def test_tiny_vlm_is_the_real_qwen2_5_vl_class(tiny_vlm_judge):
    from transformers import Qwen2_5_VLForConditionalGeneration

    assert isinstance(tiny_vlm_judge.model, Qwen2_5_VLForConditionalGeneration)


def test_vlm_judge_asks_both_orders_for_every_dimension(tiny_vlm_judge, monkeypatch):
    calls = []
    generate = tiny_vlm_judge.model.generate

    def spy(**inputs):
        calls.append(inputs["pixel_values"].clone())
        out = generate(**inputs)
        assert out.shape[1] - inputs["input_ids"].shape[1] <= 4  # max_new_tokens honoured
        return out

    monkeypatch.setattr(tiny_vlm_judge.model, "generate", spy)
    for dimension in REWARD_DIMENSIONS:
        verdict = tiny_vlm_judge.compare("a red cup", RED, BLUE, dimension)
        assert isinstance(verdict, Verdict) and verdict.vote in (-1, 0, 1)
        assert isinstance(verdict.raw, str) and "A|B" in verdict.raw and "B|A" in verdict.raw
        if not verdict.parsed:
            assert verdict.vote == 0
    assert len(calls) == 2 * len(REWARD_DIMENSIONS)
    # Same-size images give equal halves of pixel_values: the second call swaps them.
    first, second = calls[0], calls[1]
    half = first.shape[0] // 2
    assert not first[:half].equal(first[half:])
    assert first[:half].equal(second[half:]) and first[half:].equal(second[:half])


def test_vlm_judge_cancels_position_bias(tiny_vlm_judge, monkeypatch):
    monkeypatch.setattr(tiny_vlm_judge, "ask", lambda prompt, i1, i2, dim: "1")
    expected = Verdict(0, True, "A|B: '1'; B|A: '1'")
    assert tiny_vlm_judge.compare("p", RED, BLUE, "quality") == expected
    prefers_red = lambda prompt, i1, i2, dim: "1" if i1 is RED.image else "2"  # noqa: E731
    monkeypatch.setattr(tiny_vlm_judge, "ask", prefers_red)
    assert tiny_vlm_judge.compare("p", RED, BLUE, "quality").vote == 1
    assert tiny_vlm_judge.compare("p", BLUE, RED, "quality").vote == -1


# --- HTTP judge against a scripted local server -----------------------------------------------

class _ScriptedHandler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.requests.append((self.path, dict(self.headers), body))
        status, payload = server.script(len(server.requests), body)
        if status is None:  # hang past the client's timeout, then give up quietly
            time.sleep(1.0)
            return
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedHandler)) as srv:
        srv.requests = []
        yield srv


_url = server_url


def _reply(text: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


def _first_image_is_red(body: dict) -> bool:
    parts = body["messages"][0]["content"]
    url = parts[0]["image_url"]["url"]
    png = base64.b64decode(url.split(",", 1)[1])
    return Image.open(io.BytesIO(png)).getpixel((0, 0)) == (255, 0, 0)


def test_http_judge_asks_both_orders_and_votes(server):
    server.script = lambda n, body: (200, _reply("1" if _first_image_is_red(body) else "2"))
    judge = HTTPJudge(_url(server), "judge-model", api_key="secret")
    assert judge.compare("a red cup", RED, BLUE, "general_alignment") == Verdict(
        1, True, "A|B: '1'; B|A: '2'")
    assert judge.compare("a red cup", BLUE, RED, "general_alignment").vote == -1
    assert len(server.requests) == 4
    path, headers, body = server.requests[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer secret"
    assert body["model"] == "judge-model" and body["temperature"] == 0
    kinds = [p["type"] for p in body["messages"][0]["content"]]
    assert kinds == ["image_url", "image_url", "text"]
    assert "a red cup" in body["messages"][0]["content"][2]["text"]
    orders = [_first_image_is_red(b) for _, _, b in server.requests[:2]]
    assert orders == [True, False]  # A first, then B first


def test_http_judge_position_bias_is_a_tie(server):
    server.script = lambda n, body: (200, _reply("1"))
    verdict = HTTPJudge(_url(server), "m").compare("p", RED, BLUE, "aesthetics")
    assert verdict == Verdict(0, True, "A|B: '1'; B|A: '1'")


def test_http_judge_retries_503_then_succeeds(server):
    server.script = lambda n, body: (503, {"error": "loading"}) if n <= 2 else (200, _reply("tie"))
    judge = HTTPJudge(_url(server), "m", retries=3, backoff_s=0.01)
    verdict = judge.compare("p", RED, BLUE, "quality")
    assert verdict == Verdict(0, True, "A|B: 'tie'; B|A: 'tie'")
    assert len(server.requests) == 4  # 2 failures + 1 success, then the swapped order


def test_http_judge_timeout_raises_after_retries(server):
    # A dead judge must stop the round loudly, not turn into a round of silent ties.
    server.script = lambda n, body: (None, None)
    judge = HTTPJudge(_url(server), "m", timeout_s=0.2, retries=1, backoff_s=0.01)
    start = time.perf_counter()
    with pytest.raises(JudgeServerError, match="failed 2 attempts"):
        judge.compare("p", RED, BLUE, "quality")
    assert time.perf_counter() - start < 3
    assert len(server.requests) == 2


def test_http_judge_client_error_is_not_retried(server):
    server.script = lambda n, body: (400, {"error": "model not found"})
    with pytest.raises(JudgeServerError, match="HTTP 400.*model not found"):
        HTTPJudge(_url(server), "m", retries=3, backoff_s=0.01).compare("p", RED, BLUE, "quality")
    assert len(server.requests) == 1


@pytest.mark.parametrize("payload", [_reply("Image 1 is nicer"), _reply(None)])
def test_http_judge_unreadable_answer_is_an_unparsed_tie(server, payload):
    server.script = lambda n, body: (200, payload)
    verdict = HTTPJudge(_url(server), "m").compare("p", RED, BLUE, "quality")
    assert verdict.vote == 0 and verdict.parsed is False and verdict.raw


@pytest.mark.parametrize("payload", [b"<html>oops</html>", {"choices": []}, {"error": "x"},
                                     b"[" * 100_000])
def test_http_judge_reply_that_is_no_chat_completion_raises(server, payload):
    # a wrong URL (an HTML page) or a broken server: a clear error, not a round of ties
    server.script = lambda n, body: (200, payload)
    with pytest.raises(JudgeServerError, match="did not answer with a chat completion"):
        HTTPJudge(_url(server), "m", retries=3).compare("p", RED, BLUE, "quality")
    assert len(server.requests) == 1  # not retried


def test_http_judge_unreachable_server_raises(server):
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    judge = HTTPJudge(f"http://127.0.0.1:{port}/v1", "m", timeout_s=0.5, retries=1,
                      backoff_s=0.01)
    with pytest.raises(JudgeServerError, match="ConnectionRefusedError"):
        judge.compare("p", RED, BLUE, "quality")
