"""llama.cpp's quantizer in a child process, so that Ctrl-C stops it.

``llama_model_quantize`` is one long C call. In-process, Python's SIGINT handler only sets a
flag that nothing checks until the call returns, so a Ctrl-C is swallowed. Here the parent
waits on ``python -m t2i_export.gguf.quantize_child``; on Ctrl-C it kills the child, removes
the partial output and re-raises. The child sends its llama.cpp log records (re-logged by the
parent under ``t2i_export.gguf.llama_quantize``) and its failure reason back as JSON lines on
stdout, exits 0 when done and 1 when llama.cpp failed, and exits by itself if its parent dies.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from t2i_export.gguf.llama_quantize import LlamaQuantizeError
from t2i_sdk.scratch import scratch_path

LOGGER = "t2i_export.gguf.llama_quantize"
_TAG = "t2i_quantize"  # marks protocol lines among anything the C library prints


def quantize_in_child(src: Path, out_path: Path, out_type: str, *,
                      partial: Path | None = None) -> Path:
    """:func:`~t2i_export.gguf.llama_quantize.quantize_gguf` in a child process, which writes
    ``partial`` (default ``.{name}.{pid}.partial``) and renames it to ``out_path``; returns
    ``out_path``. Raises LlamaQuantizeError if it fails, KeyboardInterrupt if interrupted;
    either way nothing is left at ``out_path`` or beside it."""
    out_path = Path(out_path)
    partial = Path(partial) if partial is not None else scratch_path(out_path, "partial")
    try:
        proc = _run_to_the_end(child_command(src, out_path, out_type, partial=partial))
        error = _replay(proc.stdout)
        _check_exit(proc, error, out_path=out_path, out_type=out_type)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return out_path


# How often the wait for the child comes back to the interpreter. The kernel may deliver a
# Ctrl-C to any thread of this process (tokenizers and torch start their own); Python then only
# sets a flag, and a main thread blocked in select() without a timeout would not see it until
# the child next wrote something -- for a silent C call, maybe never.
_POLL_S = 0.25


def _run_to_the_end(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run ``cmd``; if this process is interrupted meanwhile, kill the child and reap it (so
    it has stopped writing) before re-raising."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace")
    try:
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                continue  # no output is lost by retrying; a pending Ctrl-C is raised here
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def child_command(src: Path, out_path: Path, out_type: str, *, partial: Path) -> list[str]:
    level = logging.getLogger(LOGGER).getEffectiveLevel()
    return [sys.executable, "-m", __name__, os.fspath(src), os.fspath(out_path), out_type,
            os.fspath(partial), str(level), str(os.getpid())]


def _replay(stdout: str) -> str | None:
    """Re-log the child's records here; returns the failure reason it sent, if any."""
    logger, error = logging.getLogger(LOGGER), None
    for line in stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if not isinstance(msg, dict) or _TAG not in msg:
            continue
        if "error" in msg:
            error = str(msg["error"])
        elif "level" in msg:
            logger.log(int(msg["level"]), "%s", msg.get("message", ""))
    return error


def _check_exit(proc: subprocess.CompletedProcess, error: str | None, *, out_path: Path,
                out_type: str) -> None:
    if proc.returncode == -signal.SIGINT:  # a terminal's Ctrl-C reached the child first
        raise KeyboardInterrupt
    if proc.returncode == 1 and error:
        raise LlamaQuantizeError(error)
    if proc.returncode != 0 or not out_path.is_file():
        how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exited with status {proc.returncode}")
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise LlamaQuantizeError(f"llama.cpp's quantizer process for {out_path} ({out_type}) "
                                 f"{how}: {last}")


class _JsonLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _send({"level": record.levelno, "message": record.getMessage()})


def _send(msg: dict) -> None:
    sys.stdout.write(json.dumps({_TAG: 1, **msg}) + "\n")
    sys.stdout.flush()


def _exit_with_parent(parent_pid: int, partial: Path) -> None:
    """A watcher thread: if the parent dies (kill -9), remove the partial output and exit."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.2)
        partial.unlink(missing_ok=True)
        os._exit(3)
    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str]) -> int:
    from t2i_export.gguf.llama_quantize import quantize_gguf

    src, out_path, out_type, partial, level, parent_pid = argv
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends this process even inside C
    _exit_with_parent(int(parent_pid), Path(partial))
    logger = logging.getLogger(LOGGER)
    logger.addHandler(_JsonLines())
    logger.setLevel(int(level))
    logger.propagate = False
    try:
        quantize_gguf(Path(src), Path(out_path), out_type, tmp_path=Path(partial))
    except LlamaQuantizeError as exc:
        _send({"error": str(exc)})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
