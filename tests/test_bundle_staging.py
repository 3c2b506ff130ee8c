"""Components load from a private folder holding only the files bundle.json lists: planted
tokenizer files (plain or symlinked out of the bundle) change nothing. Corrupt files whose
hash was re-recorded are a one-line BundleError naming the file, never a traceback."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest

from t2i_sdk.bundle import component_dir, load_bundle
from t2i_sdk.bundle import staging as staging_mod
from t2i_sdk.bundle.safetensors_header import read_safetensors_header
from t2i_sdk.bundle.staging import stage_files, staged_component
from t2i_sdk.errors import BundleError

# ---------------------------------------------------------------- staging, no torch


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def component(tmp_path: Path) -> Path:
    root = tmp_path / "bundle" / "comp"
    (root / "tokenizer").mkdir(parents=True)
    (root / "config.json").write_text("{}")
    (root / "tokenizer" / "tokenizer.json").write_text('{"vocab": 1}')
    (root / "special_tokens_map.json").write_text('{"pad_token": "<evil>"}')  # unlisted
    return root


def test_staging_holds_exactly_the_listed_files_and_is_removed(component):
    listed = ["config.json", "tokenizer/tokenizer.json"]
    with staged_component(component, listed) as staged:
        assert staged.name.startswith(staging_mod.STAGE_PREFIX)
        assert oct(staged.stat().st_mode & 0o777) == oct(0o700)  # private
        assert _tree(staged) == {rel: (component / rel).read_bytes() for rel in listed}
    assert not staged.exists()
    assert (component / "special_tokens_map.json").exists()  # the bundle is untouched


def test_staging_is_removed_when_loading_fails(component):
    with pytest.raises(RuntimeError):
        with staged_component(component, ["config.json"]) as staged:
            raise RuntimeError("engine failed")
    assert not staged.exists()


def test_stage_prefers_hard_links(component, tmp_path):
    how = stage_files(component, ["config.json"], tmp_path / "dest")
    assert how == {"config.json": "link"}
    assert os.path.samefile(tmp_path / "dest" / "config.json", component / "config.json")


def test_stage_falls_back_to_copy_for_small_and_symlink_for_big(component, tmp_path,
                                                                 monkeypatch):
    def no_links(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(staging_mod.os, "link", no_links)
    monkeypatch.setattr(staging_mod, "COPY_MAX_BYTES", 5)
    dest = tmp_path / "dest"
    how = stage_files(component, ["config.json", "tokenizer/tokenizer.json"], dest)
    assert how == {"config.json": "copy", "tokenizer/tokenizer.json": "symlink"}
    assert not (dest / "config.json").is_symlink()
    link = dest / "tokenizer" / "tokenizer.json"
    assert os.readlink(link) == str((component / "tokenizer" / "tokenizer.json").resolve())


def test_stage_symlinks_point_at_the_resolved_file_inside_the_component(component, tmp_path,
                                                                        monkeypatch):
    """A listed symlink that stays inside the component is staged as its real target."""
    (component / "alias.json").symlink_to("tokenizer/tokenizer.json")
    def no_links(src, dst):
        raise OSError(18, "Invalid cross-device link")
    monkeypatch.setattr(staging_mod.os, "link", no_links)
    monkeypatch.setattr(staging_mod, "COPY_MAX_BYTES", 0)
    stage_files(component, ["alias.json"], tmp_path / "dest")
    assert os.readlink(tmp_path / "dest" / "alias.json") == str(
        (component / "tokenizer" / "tokenizer.json").resolve())


@pytest.mark.parametrize("rel", ["../outside.json", "/etc/passwd", "a/../../outside.json",
                                 "linked_out.json"])
def test_stage_refuses_paths_out_of_the_component(component, tmp_path, rel):
    outside = tmp_path / "bundle" / "outside.json"
    outside.write_text("{}")
    (component / "linked_out.json").symlink_to(outside)
    with pytest.raises(BundleError, match="outside|relative POSIX path"):
        stage_files(component, [rel], tmp_path / "dest")


def test_stage_refuses_a_listed_folder(component, tmp_path):
    with pytest.raises(BundleError, match="not a regular file"):
        stage_files(component, ["tokenizer"], tmp_path / "dest")


# ---------------------------------------------------------------- safetensors headers


def _safetensors(tensors: dict, data: bytes) -> bytes:
    header = json.dumps(tensors).encode()
    return struct.pack("<Q", len(header)) + header + data


GOOD = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "U8", "shape": [1, 3], "data_offsets": [8, 11]},
        "__metadata__": {"format": "pt"}}


def test_safetensors_header_of_a_good_file(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(_safetensors(GOOD, bytes(11)))
    assert set(read_safetensors_header(path)) == {"a", "b"}


@pytest.mark.parametrize("raw, needle", [
    (b"", "shorter than its header"),
    (struct.pack("<Q", 1 << 40) + b"{}", "claims"),
    (struct.pack("<Q", 5) + b"{gar}", "not UTF-8 JSON"),
    (struct.pack("<Q", 2) + b"\xff\xfe", "not UTF-8 JSON"),
    (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    (_safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(4)),
     "outside the file"),
    (_safetensors({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
     "does not match its shape"),
    (_safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8)),
     "do not tile"),
    (_safetensors({"a": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, bytes(8)),
     "bad shape"),
    (_safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, True]}}, bytes(8)),
     "bad data_offsets"),
    (_safetensors({"a": [1]}, b""), "not described by an object"),
])
def test_corrupt_safetensors_headers_are_bundle_errors_naming_the_file(tmp_path, raw, needle):
    path = tmp_path / "w.safetensors"
    path.write_bytes(raw)
    with pytest.raises(BundleError, match=needle) as info:
        read_safetensors_header(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


# ---------------------------------------------------------------- the tiny bundle, real engines


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path) -> Path:
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_bundle, copy, symlinks=True)
    return copy


def _plant_tokenizer_files(folder: Path, outside: Path, n_tokens: int) -> None:
    """An unlisted pad-token override and an added-tokens file symlinked out of the bundle."""
    (folder / "special_tokens_map.json").write_text(json.dumps({"pad_token": "<|planted|>"}))
    outside.write_text(json.dumps({"<|evil|>": n_tokens, "<|evil2|>": n_tokens + 1}))
    (folder / "added_tokens.json").symlink_to(outside)


def _tokenizer_of(part):
    engine = getattr(part, "engine", part)  # the drafter is wrapped in its stage
    return engine.tokenizer


@pytest.mark.parametrize("role, subfolder", [("rewriter", ""), ("scorer", ""),
                                             ("drafter", "tokenizer")])
def test_unlisted_tokenizer_files_are_not_read(bundle_copy, tmp_path, role, subfolder):
    pytest.importorskip("torch")
    from transformers import AutoTokenizer

    from t2i_sdk.loading import load_component

    manifest = load_bundle(bundle_copy)
    folder = component_dir(bundle_copy, manifest.components[role]) / subfolder
    clean = AutoTokenizer.from_pretrained(folder)
    _plant_tokenizer_files(folder, tmp_path / "outside_added_tokens.json", len(clean))
    planted = AutoTokenizer.from_pretrained(folder)  # what the folder itself would give
    assert (planted.pad_token, len(planted)) != (clean.pad_token, len(clean))

    loaded = _tokenizer_of(load_component(bundle_copy, load_bundle(bundle_copy).components[role],
                                          "cpu"))
    assert (loaded.pad_token, len(loaded)) == (clean.pad_token, len(clean))
    assert loaded.get_vocab() == clean.get_vocab()
    assert "<|evil|>" not in loaded.get_vocab()


def test_pipeline_loads_and_runs_despite_planted_files(bundle_copy, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from t2i_sdk import Pipeline

    manifest = load_bundle(bundle_copy)
    for role in ("rewriter", "scorer"):
        folder = component_dir(bundle_copy, manifest.components[role])
        _plant_tokenizer_files(folder, tmp_path / f"{role}_added.json", 10_000)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where staging folders are made
    pipe = Pipeline.from_pretrained(bundle_copy, device="cpu", calibrate=False)
    result = pipe("a red star", seed=0, n_drafts=1, rounds=0, planner="rule")
    assert result.image.size == (64, 64)
    assert not [n for n in os.listdir(temp) if n.startswith(staging_mod.STAGE_PREFIX)]


def _rehash(bundle: Path, role: str, rel: str) -> None:
    path = bundle / "bundle.json"
    manifest = json.loads(path.read_text())
    manifest["components"][role]["files"][rel] = hashlib.sha256(
        (bundle / role / rel).read_bytes()).hexdigest()
    path.write_text(json.dumps(manifest))


def _drop_first_tensor(raw: bytes) -> bytes:
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    del header[sorted(k for k in header if k != "__metadata__")[0]]
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + raw[8 + n:]


def _reshape_first_tensor(raw: bytes) -> bytes:
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    first = sorted(k for k in header if k != "__metadata__")[0]
    header[first]["shape"] = [1] + header[first]["shape"]  # same bytes, wrong shape
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + raw[8 + n:]


@pytest.mark.parametrize("role, rel, damage, needle", [
    ("rewriter", "model.safetensors", lambda b: b[:8] + b"{garbage" + b[16:], "{file}"),
    ("drafter", "unet/diffusion_pytorch_model.safetensors", lambda b: b[: len(b) // 2],
     "{file}"),
    ("scorer", "model.safetensors", _drop_first_tensor, "{file}"),
    ("scorer", "model.safetensors", _reshape_first_tensor, "component 'scorer'"),
    ("drafter", "unet/diffusion_pytorch_model.safetensors", _reshape_first_tensor,
     "component 'drafter'"),
    ("rewriter", "config.json", lambda b: b"{not json", "config.json"),
    ("scorer", "tokenizer.json", lambda b: b"", "component 'scorer'"),
])
def test_corrupt_files_with_matching_hashes_are_one_line_bundle_errors(
        bundle_copy, role, rel, damage, needle):
    pytest.importorskip("torch")
    from t2i_sdk import Pipeline

    path = bundle_copy / role / rel
    path.write_bytes(damage(path.read_bytes()))
    _rehash(bundle_copy, role, rel)
    with pytest.raises(BundleError) as info:
        Pipeline.from_pretrained(bundle_copy, device="cpu", calibrate=False)
    msg = str(info.value)
    assert needle.format(file=path) in msg and "\n" not in msg
    assert staging_mod.STAGE_PREFIX not in msg  # errors name the bundle, not the staging copy


def test_a_killed_loads_staging_folder_is_swept(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f"{staging_mod.STAGE_PREFIX}{dead}-abc"
    live = tmp_path / f"{staging_mod.STAGE_PREFIX}{os.getpid()}-def"
    for folder in (stale, live):
        (folder / "unet").mkdir(parents=True)
    assert staging_mod.sweep_stale_stages(tmp_path) == [stale]
    assert not stale.exists() and live.exists()
