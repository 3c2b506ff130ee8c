"""`t2i` from the outside: outputs, and one-line errors with exit 2 that leave nothing behind."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from t2i_sdk.cli.main import main


def t2i(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "t2i_sdk.cli.main", *args], input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_plan_prints_the_layout_json(capsys):
    assert main(["plan", "three red apples above a blue cup"]) == 0
    layout = json.loads(capsys.readouterr().out)
    assert [o["label"] for o in layout["objects"]] == ["apple"] * 3 + ["cup"]
    assert {o["color"] for o in layout["objects"]} == {"red", "blue"}
    assert set(layout) == {"objects", "background"}


def test_plan_jsonl_keeps_order_one_line_per_prompt():
    prompts = ["a cat", "two dogs", "a red car left of a blue bench", "a photo of four giraffes"]
    proc = t2i("plan", "--jsonl", stdin="\n".join(prompts) + "\n")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(prompts)
    counts = [len(json.loads(line)["objects"]) for line in lines]
    assert counts == [1, 2, 2, 4]


@pytest.mark.parametrize("args,needle", [
    (["plan", "   "], "prompt is empty"),
    (["generate", "a cat", "--bundle", "{tmp}/no-bundle", "--out", "{tmp}/x.png"], "does not exist"),
    (["generate", "a cat", "--bundle", "{tmp}/no-bundle", "--out", "{tmp}/x.txt"], "use .png"),
    (["generate", "a cat", "--bundle", "{tmp}/no-bundle", "--out", "{tmp}/x.psd"], "use .png"),
    (["generate", "a cat", "--bundle", "{tmp}/no-bundle", "--out", "{tmp}/no-dir/x.png"], "does not exist"),
    (["generate", "", "--bundle", "{tmp}/no-bundle", "--out", "{tmp}/x.png"], "prompt is empty"),
    (["generate", "a cat", "--bundle", "{tmp}", "--out", "{tmp}/x.png", "--n-drafts", "0"], "--n-drafts"),
    (["generate", "a cat", "--bundle", "{tmp}", "--out", "{tmp}/x.png"], "bundle.json"),
    (["generate", "a cat", "--bundle", "{tmp}", "--out", "{tmp}/x.png", "--seed", "-1"], "--seed"),
    (["generate", "a cat", "--bundle", "{tmp}", "--out", "{tmp}", "--budget-ms", "nan"], "--budget-ms"),
])
def test_errors_are_one_line_exit_2_and_write_nothing(tmp_path, args, needle):
    proc = t2i(*(a.format(tmp=tmp_path) for a in args))
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert list(tmp_path.iterdir()) == []


def test_missing_required_option_is_a_usage_error():
    proc = t2i("bundle", "create", "out")
    assert proc.returncode == 2 and "--drafter" in proc.stderr


@pytest.mark.parametrize("damage,needle", [
    ("bad_json", "bundle.json"),
    ("schema", "schema"),
    ("missing_file", "missing"),
])
def test_damaged_bundles_are_refused(tiny_bundle, tmp_path, damage, needle):
    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    manifest = copy / "bundle.json"
    if damage == "bad_json":
        manifest.write_text(manifest.read_text()[:-20])
    elif damage == "schema":
        data = json.loads(manifest.read_text())
        data["schema_version"] = 999
        manifest.write_text(json.dumps(data))
    else:
        next((copy / "drafter").rglob("*.safetensors")).unlink()
    out = tmp_path / "o.png"
    proc = t2i("generate", "a cat", "--bundle", str(copy), "--out", str(out), "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr.lower() and "Traceback" not in proc.stderr
    assert not out.exists()


def test_generate_writes_image_contact_sheet_and_json(tiny_bundle, tmp_path):
    out = tmp_path / "cat.png"
    proc = t2i("generate", "two red apples left of a blue cup", "--bundle", str(tiny_bundle),
               "--out", str(out), "--n-drafts", "2", "--steps", "2", "--rounds", "1", "--top-k", "1",
               "--rewriter", "identity", "--planner", "rule", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    from PIL import Image
    assert Image.open(out).size == (64, 64)
    sheet = Image.open(tmp_path / "cat.sheet.png")
    assert sheet.size[0] > 64 * 2 and sheet.size[1] > 64 * 2
    summary = json.loads((tmp_path / "cat.json").read_text())
    assert len(summary["candidates"]) == 3 and summary["layout"]["objects"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.json", "cat.png", "cat.sheet.png"]
