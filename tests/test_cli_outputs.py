"""`t2i generate`'s three files (image, contact sheet, JSON): checked before the bundle loads,
written all-or-nothing, and bad arguments are one line with exit 2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import t2i_sdk.cli.file_set as file_set
from t2i_sdk.cli.file_set import write_file_set
from t2i_sdk.cli.main import main
from t2i_sdk.cli.output import run_paths
from t2i_sdk.errors import InputError

NEW = {"x.png": b"new image", "x.sheet.png": b"new sheet", "x.json": b"new json"}


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _fail_on_call(n: int, real):
    calls = []

    def maybe_fail(*args):
        calls.append(args)
        if len(calls) == n:
            raise OSError(28, "No space left on device")
        return real(*args)
    return maybe_fail


# --- write_file_set ---------------------------------------------------------------------------

def test_file_set_writes_every_file(tmp_path):
    assert write_file_set({tmp_path / k: v for k, v in NEW.items()}) == [tmp_path / k for k in NEW]
    assert _contents(tmp_path) == dict(sorted(NEW.items()))


@pytest.mark.parametrize("step", ["_write_temp", "_place"])
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("before", [{}, {"x.png": b"old image", "x.json": b"old json"}])
def test_a_failed_write_leaves_the_folder_as_it_was(tmp_path, monkeypatch, step, n, before):
    for name, data in before.items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(file_set, step, _fail_on_call(n, getattr(file_set, step)))
    with pytest.raises(OSError, match="No space left"):
        write_file_set({tmp_path / k: v for k, v in NEW.items()})
    assert _contents(tmp_path) == before  # no partial set, no temp or set-aside files


def test_an_interrupted_write_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    (tmp_path / "x.sheet.png").write_bytes(b"old sheet")
    real = file_set._place

    def interrupted(tmp, path):
        if path.name == "x.json":
            raise KeyboardInterrupt
        real(tmp, path)
    monkeypatch.setattr(file_set, "_place", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_file_set({tmp_path / k: v for k, v in NEW.items()})
    assert _contents(tmp_path) == {"x.sheet.png": b"old sheet"}


# --- run_paths: --out checked before any work -------------------------------------------------

def test_the_named_image_may_be_replaced_but_not_the_files_beside_it(tmp_path):
    (tmp_path / "x.png").write_bytes(b"old")
    paths = run_paths(tmp_path / "x.png", force=False)
    assert [p.name for p in paths] == ["x.png", "x.sheet.png", "x.json"]
    (tmp_path / "x.json").write_bytes(b"old")
    (tmp_path / "x.sheet.png").write_bytes(b"old")
    with pytest.raises(InputError, match=r"x\.sheet\.png and .*x\.json already exist.*--force"):
        run_paths(tmp_path / "x.png", force=False)
    assert run_paths(tmp_path / "x.png", force=True) == paths


@pytest.mark.parametrize("folder", ["x.png", "x.sheet.png", "x.json"])
def test_a_folder_in_the_way_is_refused_even_with_force(tmp_path, folder):
    (tmp_path / folder).mkdir()
    with pytest.raises(InputError, match="is a folder"):
        run_paths(tmp_path / "x.png", force=True)


# --- t2i generate end to end ------------------------------------------------------------------

GENERATE = ["generate", "a red apple", "--n-drafts", "1", "--steps", "1", "--rounds", "0",
            "--rewriter", "identity", "--planner", "rule", "--device", "cpu", "--quiet"]


@pytest.fixture
def fast_bundle(tiny_pipeline, monkeypatch):
    """``--bundle`` loads the session's tiny pipeline instead of reading the folder again."""
    from t2i_sdk.pipeline import Pipeline
    monkeypatch.setattr(Pipeline, "from_pretrained", classmethod(lambda cls, *a, **k: tiny_pipeline))
    monkeypatch.setattr(Pipeline, "close", lambda self: None)  # the session's pipeline stays open
    return "tiny"


@pytest.mark.parametrize("n", [2, 3])
def test_generate_that_fails_writing_leaves_no_partial_set(fast_bundle, tmp_path, monkeypatch,
                                                           capsys, n):
    monkeypatch.setattr(file_set, "_place", _fail_on_call(n, file_set._place))
    assert main([*GENERATE, "--bundle", fast_bundle, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "No space left" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_generate_replaces_its_own_earlier_files_only_with_force(fast_bundle, tmp_path, capsys):
    args = [*GENERATE, "--bundle", fast_bundle, "--out", str(tmp_path / "x.png")]
    assert main(args) == 0
    first = _contents(tmp_path)
    assert sorted(first) == ["x.json", "x.png", "x.sheet.png"]
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err and _contents(tmp_path) == first
    assert main([*args, "--force"]) == 0
    assert sorted(_contents(tmp_path)) == ["x.json", "x.png", "x.sheet.png"]


# --- bad input: one line, exit 2, nothing written, and before the bundle is read ------------

@pytest.mark.parametrize("args,needle", [
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2 ** 63)], "--seed"),
    (["--budget-ms", "nan"], "--budget-ms"),
    (["--budget-ms", "inf"], "--budget-ms"),
    (["--budget-ms", "0"], "--budget-ms"),
    (["--lam", "1.5"], "--lam"),
    (["--steps", "0"], "--steps"),
    (["--n-drafts", "100000"], "--n-drafts"),
    (["--out", "{tmp}/dir.png"], "is a folder"),
    (["--out", "{tmp}/taken.sheet.png/x.png"], "not a folder"),
    (["--out", "{tmp}/taken.png"], "already exist"),
    (["--out", "{tmp}/x.gif"], "use .png"),
    (["--prompt", "\udcff\udcfe cat"], "not valid Unicode"),
    (["--prompt", "\ud800"], "not valid Unicode"),
    (["--prompt", " \t\n"], "prompt is empty"),
])
def test_bad_arguments_are_one_line_before_the_bundle_loads(tmp_path, capsys, monkeypatch, args,
                                                           needle):
    from t2i_sdk.pipeline import Pipeline

    def must_not_load(*a, **k):
        raise AssertionError("the bundle was loaded before the arguments were checked")
    monkeypatch.setattr(Pipeline, "from_pretrained", must_not_load)
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "taken.sheet.png").write_bytes(b"keep")
    before = _contents_tree(tmp_path)
    opts = dict(zip(args[::2], (a.format(tmp=tmp_path) for a in args[1::2])))
    prompt = opts.pop("--prompt", "a cat")
    out = opts.pop("--out", str(tmp_path / "x.png"))
    argv = ["generate", prompt, "--bundle", str(tmp_path), "--out", out, "--quiet"]
    assert main([*argv, *(x for kv in opts.items() for x in kv)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert _contents_tree(tmp_path) == before


def _contents_tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_undecodable_argv_bytes_are_one_line(tmp_path):
    """A prompt that is not UTF-8 reaches Python as lone surrogates (surrogateescape)."""
    proc = subprocess.run([sys.executable, "-m", "t2i_sdk.cli.main", "generate", b"\xff\xfe cat",
                           "--bundle", str(tmp_path), "--out", str(tmp_path / "x.png")],
                          capture_output=True, timeout=120, env={"LC_ALL": "C.UTF-8", "PATH": ""})
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, err
    assert "not valid Unicode" in err and "Traceback" not in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writers_leftovers_are_swept_by_the_next_write(tmp_path):
    import subprocess
    import sys

    from t2i_sdk.cli.file_set import write_file_set

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    out = tmp_path / "x.png"
    stale = [tmp_path / f".x.png.{dead}.tmp", tmp_path / f".x.json.{dead}.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    write_file_set({out: b"png", tmp_path / "x.json": b"{}"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.png"]
