"""HTTP judge limits against misbehaving local servers: a total deadline per request (a server
that trickles bytes cannot hold a comparison past ``timeout_s``), a reply size cap (a huge body
is refused, not read into memory), settings checked at construction, and the one-question
probe ``check``."""
from __future__ import annotations

import json
import socketserver
import time

import pytest
from PIL import Image

from fakes import server_url, serving

from t2i_sdk.errors import InputError, T2IError
from t2i_training.judges import HTTPJudge, JudgeServerError, Sample

RED = Sample("a red cup", Image.new("RGB", (16, 16), (255, 0, 0)))
BLUE = Sample("a blue cup", Image.new("RGB", (16, 16), (0, 0, 255)))
REPLY = json.dumps({"choices": [{"message": {"role": "assistant", "content": "1"}}]}).encode()


class _RawHandler(socketserver.StreamRequestHandler):
    """Reads one HTTP request, then lets the test's ``reply(wfile, stats)`` write raw bytes."""

    def handle(self):
        length = 0
        while True:
            line = self.rfile.readline(65537)
            if not line or line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        self.rfile.read(length)
        self.server.requests += 1
        try:
            self.server.reply(self.wfile, self.server.stats)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass


@pytest.fixture
def raw_server():
    with serving(socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RawHandler)) as srv:
        srv.requests, srv.stats = 0, {"sent": 0}
        yield srv


_url = server_url


def _ok(wfile, stats):
    wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(REPLY) + REPLY)


def _trickle(data: bytes, every_s: float):
    def reply(wfile, stats):
        for i in range(len(data)):
            wfile.write(data[i:i + 1])
            wfile.flush()
            stats["sent"] += 1
            time.sleep(every_s)
    return reply


def test_normal_reply_still_works(raw_server):
    raw_server.reply = _ok
    judge = HTTPJudge(_url(raw_server), "m", timeout_s=2, retries=0)
    assert judge.compare("p", RED, BLUE, "quality").raw == "A|B: '1'; B|A: '1'"
    assert judge.check() == "1" and raw_server.requests == 3


@pytest.mark.parametrize("part", ["body", "headers"])
def test_trickling_server_fails_within_the_deadline(raw_server, part):
    # one byte every 0.2 s never trips a per-read timeout of 1 s; the request deadline must
    body = b'{"choices": [{"message": {"content": "1"}}]}' + b" " * 200
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n" % len(body) + b"X-Pad: " + b"a" * 200 + b"\r\n\r\n")
    if part == "body":
        raw_server.reply = lambda wfile, stats: (wfile.write(head), wfile.flush(),
                                                 _trickle(body, 0.2)(wfile, stats))
    else:
        raw_server.reply = _trickle(head + body, 0.2)
    judge = HTTPJudge(_url(raw_server), "m", timeout_s=1.0, retries=0)
    start = time.monotonic()
    with pytest.raises(JudgeServerError, match="failed 1 attempts.*DeadlineExceeded"):
        judge.compare("p", RED, BLUE, "quality")
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 1.0 + 0.8, elapsed


def test_retries_each_get_their_own_deadline(raw_server):
    raw_server.reply = _trickle(b"HTTP/1.1 200 OK\r\n" + b"X" * 100, 0.1)
    judge = HTTPJudge(_url(raw_server), "m", timeout_s=0.5, retries=1, backoff_s=0.01)
    start = time.monotonic()
    with pytest.raises(JudgeServerError, match="failed 2 attempts"):
        judge.compare("p", RED, BLUE, "quality")
    assert time.monotonic() - start < 2 * 0.5 + 1.0
    assert raw_server.requests == 2


def test_declared_oversized_body_is_refused_unread(raw_server):
    def reply(wfile, stats):
        wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 300000000\r\n\r\n")
        wfile.flush()
        chunk = b"x" * 65536
        for _ in range(300_000_000 // len(chunk)):
            wfile.write(chunk)
            stats["sent"] += len(chunk)

    raw_server.reply = reply
    judge = HTTPJudge(_url(raw_server), "m", timeout_s=10, retries=3)
    start = time.monotonic()
    with pytest.raises(JudgeServerError, match="300,000,000 bytes.*over the 1,048,576-byte cap"):
        judge.compare("p", RED, BLUE, "quality")
    assert time.monotonic() - start < 5
    assert raw_server.requests == 1  # a size error is not retried


def test_undeclared_oversized_body_stops_at_the_cap(raw_server):
    def reply(wfile, stats):  # no Content-Length: the body runs until the connection closes
        wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(200_000_000 // len(chunk)):
            wfile.write(chunk)
            stats["sent"] += len(chunk)

    raw_server.reply = reply
    judge = HTTPJudge(_url(raw_server), "m", timeout_s=10, max_response_bytes=100_000)
    with pytest.raises(JudgeServerError, match="over the 100,000-byte cap"):
        judge.compare("p", RED, BLUE, "quality")
    time.sleep(0.2)
    assert raw_server.stats["sent"] < 20_000_000  # only socket buffers' worth was sent


def test_a_small_cap_still_reads_a_normal_reply(raw_server):
    raw_server.reply = _ok
    assert HTTPJudge(_url(raw_server), "m", max_response_bytes=len(REPLY)).check() == "1"


@pytest.mark.parametrize("settings, bad", [
    ({"timeout_s": 0}, "timeout_s"), ({"timeout_s": -1}, "timeout_s"),
    ({"timeout_s": float("nan")}, "timeout_s"), ({"timeout_s": float("inf")}, "timeout_s"),
    ({"timeout_s": "30"}, "timeout_s"), ({"max_response_bytes": 0}, "max_response_bytes"),
    ({"max_response_bytes": 1.5}, "max_response_bytes"), ({"retries": -1}, "retries"),
    ({"backoff_s": float("nan")}, "backoff_s"), ({"max_tokens": True}, "max_tokens"),
    ({"base_url": "ftp://x/v1"}, "base_url"), ({"base_url": "localhost:8000"}, "base_url"),
])
def test_bad_settings_are_refused_at_construction(settings, bad):
    kwargs = {"base_url": "http://127.0.0.1:9/v1", "model": "m", **settings}
    with pytest.raises(InputError, match=f"bad HTTP judge settings: {bad}="):
        HTTPJudge(**kwargs)


def test_judge_errors_are_one_line_user_errors(raw_server):
    assert issubclass(JudgeServerError, T2IError)
    raw_server.reply = lambda wfile, stats: wfile.write(
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\n\r\nno such model")
    with pytest.raises(JudgeServerError, match="HTTP 404: no such model") as info:
        HTTPJudge(_url(raw_server), "m").check()
    assert "\n" not in str(info.value)


# --- t2i-train when the HTTP judge fails: one line, exit 2, the run stays resumable ---------

PROMPTS = ["a photo of a cat", "a dog and a car", "two apples"]


def _run_yaml(tmp_path, base_url: str) -> str:
    (tmp_path / "base").mkdir(exist_ok=True)  # never loaded: the policy is faked or not reached
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS) + "\n")
    path = tmp_path / "run.yaml"
    path.write_text(
        f"bundle: {tmp_path / 'no-bundle'}\nbase_model: {tmp_path / 'base'}\n"
        f"prompts: {tmp_path / 'p.txt'}\nrun_dir: {tmp_path / 'run'}\nrounds: 1\n"
        "render: false\nheld_out_fraction: 0.0\ndevice: cpu\nquantization: none\n"
        "dimensions: [quality]\nsampling: {n_rewrites: 2, max_new_tokens: 8}\n"
        f"judge: {{kind: http, options: {{base_url: '{base_url}', model: m, retries: 0, "
        "timeout_s: 1}}\n")
    return str(path)


def _dead_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_policy(monkeypatch):
    """No LLM: rounds' policy loading and sampling are replaced; returns the sampled prompts."""
    from types import SimpleNamespace

    import t2i_training.rounds as rounds
    from t2i_training.policy import Rewrite

    sampled = []
    monkeypatch.setattr(rounds, "load_policy", lambda *a, **k: SimpleNamespace(notes=[]))
    monkeypatch.setattr(rounds, "sample_rewrites", lambda policy, prompt, n, seed, **k: (
        sampled.append(prompt) or [Rewrite(f"{prompt} #{i}", f"{prompt} #{i}", 3)
                                   for i in range(n)]))
    return sampled


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("t2i-train: error: "), err
    return err[0]


def test_cli_dead_judge_fails_fast_before_any_work(tmp_path, capsys, monkeypatch):
    pytest.importorskip("rich")
    from t2i_training.cli import main

    sampled = _fake_policy(monkeypatch)
    config = _run_yaml(tmp_path, f"http://127.0.0.1:{_dead_port()}/v1")
    start = time.monotonic()
    assert main(["-q", "dpo", "--config", config, "--no-export"]) == 2
    assert time.monotonic() - start < 10
    line = _one_error_line(capsys)
    assert "test question before any work started" in line and "ConnectionRefused" in line
    assert "run the same command again to resume" in line
    assert sampled == []  # nothing expensive ran


@pytest.mark.parametrize("failure", ["http500", "garbage", "timeout"])
def test_cli_judge_failing_mid_round_keeps_the_work_and_resumes(raw_server, tmp_path, capsys,
                                                                monkeypatch, failure):
    pytest.importorskip("rich")
    from t2i_training.cli import main
    from t2i_training.run_dir import RunDir

    per_prompt = 2 * 2  # n(n−1) = 2 ordered pairs × both image orders, one dimension
    healthy = {"requests": 1 + per_prompt}  # the probe, then the first prompt's questions

    def reply(wfile, stats):
        if raw_server.requests <= healthy["requests"]:
            return _ok(wfile, stats)
        if failure == "http500":
            wfile.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nboom")
        elif failure == "garbage":
            wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{not json")
        else:
            _trickle(b"HTTP/1.1 200 OK\r\n" + b"X" * 100, 0.1)(wfile, stats)

    raw_server.reply = reply
    sampled = _fake_policy(monkeypatch)
    config = _run_yaml(tmp_path, _url(raw_server))
    assert main(["-q", "dpo", "--config", config, "--no-export"]) == 2
    line = _one_error_line(capsys)
    assert "judge server" in line and "resume" in line
    rd = RunDir(tmp_path / "run").round(1)
    rewrites = (rd.path / "rewrites.jsonl").read_text().splitlines()
    votes = [json.loads(v) for v in (rd.path / "votes.jsonl").read_text().splitlines()]
    assert len(rewrites) == len(PROMPTS) and sampled == PROMPTS  # sampling finished and kept
    assert [v["index"] for v in votes] == [0]  # the first prompt was judged and kept

    # run again: nothing is re-sampled, judging resumes at prompt 1 (and fails there again)
    before = raw_server.requests
    healthy["requests"] = before + 1 + per_prompt  # the probe and prompt 1 go through
    assert main(["-q", "dpo", "--config", config, "--no-export"]) == 2
    _one_error_line(capsys)
    votes = [json.loads(v) for v in (rd.path / "votes.jsonl").read_text().splitlines()]
    assert sampled == PROMPTS and [v["index"] for v in votes] == [0, 1]
