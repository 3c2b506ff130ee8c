"""`t2i-export` leaves nothing behind: stale temp files of killed runs are swept, existing
outputs are replaced only with --force, and Ctrl-C stops llama.cpp's quantizer (exit 130)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from t2i_export.cli import main
from t2i_sdk.scratch import pid_alive, scratch_path, sweep_stale

pytest.importorskip("gguf", reason="the gguf package (the `llama` extra) is not installed")


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    from t2i_engines.pytorch.tiny.causal_lm import build_tiny_llama
    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="module")
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- stale temp files -------------------------------------------------------------------------

def test_gguf_export_sweeps_what_killed_runs_left(tiny_llama, tmp_path, dead_pid):
    out = tmp_path / "m.gguf"
    stale = [scratch_path(out, "f16.gguf", pid=dead_pid), scratch_path(out, "partial", pid=dead_pid)]
    live = scratch_path(out, "partial", pid=os.getppid())  # a concurrent run's: kept
    other = tmp_path / f".other.gguf.{dead_pid}.partial"  # another output's: not ours to sweep
    for path in (*stale, live, other):
        path.write_bytes(b"GGUF")
    assert main(["--quiet", "gguf", str(tiny_llama), str(out), "--type", "f16"]) == 0
    assert _names(tmp_path) == sorted(["m.gguf", live.name, other.name])


def test_sweep_removes_dead_temp_folders_and_puts_back_a_set_aside_old_one(tmp_path, dead_pid):
    final = tmp_path / "bundle"
    tmp = scratch_path(final, "tmp", pid=dead_pid)
    (tmp / "drafter").mkdir(parents=True)
    old = scratch_path(final, "old", pid=dead_pid)
    old.mkdir()
    (old / "bundle.json").write_text("{}")
    assert sweep_stale(final) == [tmp]
    assert _names(tmp_path) == ["bundle"] and (final / "bundle.json").is_file()


# --- existing outputs -------------------------------------------------------------------------

def test_gguf_onto_an_existing_file_needs_force(tiny_llama, tmp_path, capsys):
    out = tmp_path / "m.gguf"
    out.write_bytes(b"keep me")
    assert main(["--quiet", "gguf", str(tiny_llama), str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and err.count("\n") == 1
    assert out.read_bytes() == b"keep me"
    assert main(["--quiet", "gguf", str(tiny_llama), str(out), "--force"]) == 0
    assert out.read_bytes()[:4] == b"GGUF" and _names(tmp_path) == ["m.gguf"]


@pytest.mark.parametrize("command,target,needle", [
    ("gguf", "folder", "is a folder"),
    ("onnx", "file", "not a folder"),
    ("onnx", "foreign_folder", "--force"),
    ("bundle", "folder", "--force"),
    ("bundle", "file", "--force"),
])
def test_existing_outputs_are_refused_before_any_work(tiny_llama, tmp_path, capsys, command,
                                                      target, needle):
    out = tmp_path / "out"
    if target == "file":
        out.write_text("keep me")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
    src = tiny_llama if command == "gguf" else tmp_path / "no-bundle"  # never read
    assert main(["--quiet", command, str(src), str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert _names(tmp_path) == ["out"]
    assert (out if target == "file" else out / "notes.txt").read_text() == "keep me"


# --- Ctrl-C during llama.cpp's quantizer ------------------------------------------------------

def test_interrupted_quantisation_exits_130_and_leaves_nothing(tiny_llama, tmp_path, monkeypatch,
                                                              capsys):
    import t2i_export.gguf.convert as convert

    def interrupted(src: Path, out_path: Path, out_type: str, *, partial: Path) -> Path:
        assert src.stat().st_size > 0 and src.name.endswith(".f16.gguf")  # the intermediate
        partial.write_bytes(b"GGUF partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(convert, "require_llama_cpp", lambda: None)
    monkeypatch.setattr(convert, "quantize_in_child", interrupted)
    out = tmp_path / "out" / "m.gguf"
    assert main(["--quiet", "gguf", str(tiny_llama), str(out), "--type", "q4_k"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(out.parent.iterdir()) == []  # no output, no f16 intermediate, no .partial


def test_quantizer_child_that_dies_is_an_error(tmp_path, monkeypatch):
    import t2i_export.gguf.quantize_child as qc
    from t2i_export.gguf.llama_quantize import LlamaQuantizeError

    monkeypatch.setattr(qc, "child_command", lambda *a, **k: [
        sys.executable, "-c", "import os, sys; print('boom', file=sys.stderr); os.kill(os.getpid(), 9)"])
    with pytest.raises(LlamaQuantizeError, match="killed by signal 9: boom"):
        qc.quantize_in_child(tmp_path / "in.gguf", tmp_path / "m.gguf", "q4_k")
    assert list(tmp_path.iterdir()) == []


# A stand-in for the quantizer's child process that, like a C call, does not stop for SIGINT;
# it records its pid and that the f16 intermediate exists, then sleeps.
_SLOW_CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    Path(sys.argv[1]).write_text(f"{os.getpid()} {Path(sys.argv[2]).is_file()}")
    time.sleep(120)
""")

# A shell without job control starts background commands with SIGINT ignored, and Python then
# installs no KeyboardInterrupt handler; the scripts below put back what a terminal gives.
_RUN_EXPORT = textwrap.dedent("""
    import signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import t2i_export.gguf.quantize_child as qc
    marker, child = sys.argv[1], sys.argv[2]
    qc.child_command = lambda src, *a, **k: [sys.executable, "-c", child, marker, str(src)]
    from t2i_export.cli import main
    sys.exit(main(["--quiet", "gguf", *sys.argv[3:], "--type", "q4_k"]))
""")


def _start_export(tiny_llama: Path, out: Path, marker: Path) -> tuple[subprocess.Popen, int]:
    """``t2i-export gguf --type q4_k`` in its own process group, once its quantizer runs;
    returns the process and the quantizer child's pid."""
    proc = subprocess.Popen([sys.executable, "-c", _RUN_EXPORT, str(marker), _SLOW_CHILD,
                             str(tiny_llama), str(out)], start_new_session=True,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (marker.is_file() and marker.read_text()):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child_pid, intermediate_seen = marker.read_text().split()
    assert intermediate_seen == "True"
    return proc, int(child_pid)


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX signals")
def test_ctrl_c_stops_the_quantizer_child_and_exits_130(tiny_llama, tmp_path):
    out_dir, marker = tmp_path / "out", tmp_path / "marker"
    proc, child_pid = _start_export(tiny_llama, out_dir / "m.gguf", marker)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not pid_alive(child_pid)
    assert list(out_dir.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX signals")
def test_intermediate_of_a_killed_export_is_swept_by_the_next_run(tiny_llama, tmp_path):
    out_dir, marker = tmp_path / "out", tmp_path / "marker"
    out = out_dir / "m.gguf"
    proc, child_pid = _start_export(tiny_llama, out, marker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    os.kill(child_pid, signal.SIGKILL)  # the stand-in does not watch its parent; the real one does
    assert [p.name for p in out_dir.iterdir()] == [f".m.gguf.{proc.pid}.f16.gguf"]
    assert main(["--quiet", "gguf", str(tiny_llama), str(out), "--type", "f16"]) == 0
    assert _names(out_dir) == ["m.gguf"]


def test_bundle_keeps_overwrite_as_another_name_for_force():
    from t2i_export.cli import build_parser
    assert build_parser().parse_args(["bundle", "b", "out", "--overwrite"]).force is True


def test_bundle_export_onto_its_own_source_is_refused(tiny_bundle, tmp_path, capsys):
    import shutil
    src = shutil.copytree(tiny_bundle, tmp_path / "b")
    assert main(["--quiet", "bundle", str(src), str(src), "--force", "--engines", "torch"]) == 2
    assert "source bundle" in capsys.readouterr().err
    assert _names(tmp_path) == ["b"] and (src / "bundle.json").is_file()


# A Ctrl-C that the kernel delivers to another thread of the export process (tokenizers and
# torch start their own) only sets Python's flag: the wait for a silent quantizer must still
# come back to the interpreter to raise it.
_CTRL_C_ON_ANOTHER_THREAD = textwrap.dedent("""
    import signal, subprocess, sys, threading, time
    import t2i_export.gguf.quantize_child as qc
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def interrupt_from_this_thread():
        time.sleep(0.5)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    threading.Thread(target=interrupt_from_this_thread).start()
    start = time.monotonic()
    try:
        qc._run_to_the_end([sys.executable, "-c", "import time; time.sleep(60)"])
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - start:.1f} s")
""")


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX threads and signals")
def test_ctrl_c_delivered_to_another_thread_still_stops_the_wait():
    out = subprocess.run([sys.executable, "-c", _CTRL_C_ON_ANOTHER_THREAD], capture_output=True,
                         text=True, timeout=50)
    assert out.stdout.startswith("interrupted after"), out.stderr
    assert float(out.stdout.split()[2]) < 20
