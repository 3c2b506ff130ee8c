"""Bundle format: create -> load round trip, every refusal, atomicity. No torch, no network."""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from pathlib import Path

import pytest

from t2i_sdk.bundle import (SCHEMA_VERSION, atomic_directory, atomic_write_text,
                            component_dir, create_bundle, detect_kind, hash_tree, load_bundle,
                            read_manifest, sha256_file, verify_files, write_manifest)
from t2i_sdk.bundle import create as create_mod
from t2i_sdk.bundle import hashing as hashing_mod
from t2i_sdk.errors import BundleError

# ---------------------------------------------------------------- fake native components


def _write(root: Path, rel: str, data: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


def fake_pipeline(root: Path, class_name: str) -> Path:
    _write(root, "model_index.json", json.dumps({"_class_name": class_name}))
    _write(root, "unet/config.json", "{}")
    _write(root, "unet/diffusion_pytorch_model.safetensors", b"unet-weights")
    _write(root, "tokenizer/vocab.json", '{"a": 0}')
    return root


def fake_transformers(root: Path, arch: str) -> Path:
    _write(root, "config.json", json.dumps({"architectures": [arch]}))
    _write(root, "model.safetensors", b"weights-" + arch.encode())
    _write(root, "tokenizer.json", "{}")
    return root


@pytest.fixture
def srcs(tmp_path: Path) -> dict[str, Path]:
    base = tmp_path / "src"
    return {
        "drafter": fake_pipeline(base / "gligen", "StableDiffusionGLIGENPipeline"),
        "scorer": fake_transformers(base / "clip", "CLIPModel"),
        "refiner": fake_pipeline(base / "sd", "StableDiffusionImg2ImgPipeline"),
        "rewriter": fake_transformers(base / "lm", "Qwen2ForCausalLM"),
    }


@pytest.fixture
def bundle(tmp_path: Path, srcs) -> Path:
    out = tmp_path / "bundle"
    create_bundle(out, {"drafter": srcs["drafter"], "scorer": srcs["scorer"]})
    return out


def _edit_manifest(bundle_dir: Path, edit) -> None:
    path = bundle_dir / "bundle.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _load_error(bundle_dir: Path, **kw) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(bundle_dir, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


# ---------------------------------------------------------------- round trip


def test_create_then_load_round_trip(tmp_path, srcs):
    out = tmp_path / "demo"
    opts = {"rewriter": {"system_prompt": "Rewrite.", "temperature": 0.7},
            "drafter": {"guidance_scale": 7.5}}
    made = create_bundle(out, srcs, options=opts, dtype="float16")
    loaded = load_bundle(out)
    assert loaded == made
    assert loaded.schema_version == SCHEMA_VERSION and loaded.name == "demo"
    assert loaded.created_by.startswith("t2i-sdk ")
    assert set(loaded.components) == {"drafter", "scorer", "refiner", "rewriter"}
    drafter = loaded.components["drafter"]
    assert (drafter.role, drafter.kind, drafter.engine, drafter.dtype) == (
        "drafter", "gligen", "torch", "float16")
    assert drafter.options == {"guidance_scale": 7.5}
    assert loaded.components["rewriter"].options["system_prompt"] == "Rewrite."
    assert loaded.components["scorer"].options == {}
    assert sorted(drafter.files) == ["model_index.json", "tokenizer/vocab.json",
                                     "unet/config.json",
                                     "unet/diffusion_pytorch_model.safetensors"]
    weights = component_dir(out, drafter) / "unet/diffusion_pytorch_model.safetensors"
    assert weights.read_bytes() == b"unet-weights"
    assert drafter.files["unet/diffusion_pytorch_model.safetensors"] == hashlib.sha256(
        b"unet-weights").hexdigest()
    text = (out / "bundle.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert _siblings(out) == ["demo", "src"]  # no temp folders left


def test_write_then_read_manifest_is_identity(bundle, tmp_path):
    manifest = read_manifest(bundle)
    write_manifest(bundle, manifest)
    assert read_manifest(bundle) == manifest
    assert [p.name for p in bundle.iterdir() if p.name.startswith(".")] == []


def test_reserved_engines_are_accepted(bundle):
    _edit_manifest(bundle, lambda d: d["components"]["scorer"].update(engine="onnxruntime"))
    assert load_bundle(bundle).components["scorer"].engine == "onnxruntime"


# ---------------------------------------------------------------- load refusals


def test_load_refuses_missing_path_and_file(tmp_path):
    assert "does not exist" in _load_error(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    assert "not a directory" in _load_error(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    assert "no bundle.json" in _load_error(tmp_path / "empty")


def test_load_refuses_bad_json_with_line_and_col(bundle):
    (bundle / "bundle.json").write_text('{\n  "name": "x",\n  oops\n}')
    msg = _load_error(bundle)
    assert "bad JSON at line 3 col 3" in msg and "bundle.json" in msg


def test_load_refuses_unknown_schema_version(bundle):
    _edit_manifest(bundle, lambda d: d.update(schema_version=2))
    msg = _load_error(bundle)
    assert "unknown schema_version 2" in msg and "version 1" in msg


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d.pop("name"), "missing required field 'name'"),
    (lambda d: d["components"]["drafter"].pop("files"),
     "missing required field 'components.drafter.files'"),
    (lambda d: d["components"].pop("scorer"), "missing required role 'scorer'"),
    (lambda d: d["components"].update(painter={}), "unknown role 'painter'"),
    (lambda d: d["components"]["drafter"].update(kind="unet"), "unknown kind 'unet'"),
    (lambda d: d["components"]["drafter"].update(kind="clip"),
     "components.drafter.kind is 'clip' but a drafter must be 'gligen'"),
    (lambda d: d["components"]["scorer"].update(engine="tvm"), "unknown engine 'tvm'"),
    (lambda d: d["components"]["scorer"].update(path="/etc"), "'/etc' must be a relative"),
    (lambda d: d["components"]["scorer"].update(path="../src/clip"), "escapes the bundle"),
    (lambda d: d["components"]["scorer"]["files"].update({"../x": "0" * 64}),
     "escapes the bundle"),
    (lambda d: d["components"]["scorer"]["files"].update({"config.json": "abc"}),
     "files['config.json'] is not a sha256"),
    (lambda d: d.update(schema_version="1"), "'schema_version' must be a JSON integer"),
])
def test_load_refuses_bad_fields(bundle, edit, expected):
    _edit_manifest(bundle, edit)
    assert expected in _load_error(bundle)


def test_load_refuses_component_symlinked_out(bundle, tmp_path):
    outside = tmp_path / "outside"
    os.rename(bundle / "scorer", outside)
    (bundle / "scorer").symlink_to(outside, target_is_directory=True)
    assert "resolves outside the bundle" in _load_error(bundle, verify=False)


def test_load_refuses_file_symlinked_out(bundle, tmp_path):
    (tmp_path / "evil.json").write_text("{}")
    (bundle / "scorer/config.json").unlink()
    (bundle / "scorer/config.json").symlink_to(tmp_path / "evil.json")
    assert "config.json: resolves outside" in _load_error(bundle)


def test_load_refuses_missing_component_folder(bundle):
    os.rename(bundle / "scorer", bundle / "elsewhere")
    assert "scorer folder 'scorer' is missing" in _load_error(bundle)


def test_load_refuses_missing_listed_file_even_without_verify(bundle):
    (bundle / "drafter/unet/config.json").unlink()
    for verify in (True, False):
        msg = _load_error(bundle, verify=verify)
        assert "drafter/unet/config.json: listed file is missing" in msg


def test_load_refuses_sha_mismatch_only_when_verifying(bundle):
    target = bundle / "scorer/model.safetensors"
    expected = sha256_file(target)
    target.write_bytes(b"tampered")
    assert load_bundle(bundle, verify=False).name == "bundle"  # existence only: passes
    msg = _load_error(bundle)
    assert "model.safetensors: sha256 mismatch" in msg
    assert f"expected {expected[:12]}" in msg
    assert f"got {hashlib.sha256(b'tampered').hexdigest()[:12]}" in msg


# ---------------------------------------------------------------- hashing


def test_sha256_file_streams_multi_chunk_files(tmp_path):
    data = os.urandom(2 * hashing_mod.CHUNK_BYTES + 123)
    (tmp_path / "big").write_bytes(data)
    seen = []
    assert sha256_file(tmp_path / "big", on_bytes=seen.append) == hashlib.sha256(data).hexdigest()
    assert seen == [hashing_mod.CHUNK_BYTES, hashing_mod.CHUNK_BYTES, 123]


def test_hash_tree_lists_posix_relpaths_sorted_skipping_caches(tmp_path):
    for rel in ("b.txt", "a/z.json", "a/.hidden", ".gitattributes",
                ".cache/huggingface/x.lock", "pkg/__pycache__/m.pyc"):
        _write(tmp_path, rel, rel)
    tree = hash_tree(tmp_path)
    assert list(tree) == [".gitattributes", "a/.hidden", "a/z.json", "b.txt"]
    assert tree["a/z.json"] == hashlib.sha256(b"a/z.json").hexdigest()


def test_verify_files_with_progress_bar(tmp_path, monkeypatch):
    monkeypatch.setattr(hashing_mod, "PROGRESS_MIN_BYTES", 0)  # force the rich bar on
    _write(tmp_path, "w.safetensors", b"abc")
    files = hash_tree(tmp_path, progress=True)
    verify_files(tmp_path, files, progress=True)
    with pytest.raises(BundleError, match="sha256 mismatch"):
        verify_files(tmp_path, {"w.safetensors": "0" * 64}, progress=True)


# ---------------------------------------------------------------- atomic writes


def test_atomic_directory_appears_only_on_success(tmp_path):
    final = tmp_path / "out"
    with atomic_directory(final) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.tmp-")
        (tmp / "f").write_text("new")
        assert not final.exists()
    assert (final / "f").read_text() == "new"
    assert _siblings(final) == ["out"]


def test_atomic_directory_leaves_nothing_on_exception(tmp_path):
    final = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_directory(final) as tmp:
            (tmp / "f").write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_refuses_existing_without_overwrite(tmp_path):
    final = tmp_path / "out"
    _write(final, "old", "old")
    with pytest.raises(BundleError, match="already exists.*overwrite=True"):
        with atomic_directory(final):
            pytest.fail("block must not run")
    assert (final / "old").read_text() == "old"
    assert _siblings(final) == ["out"]


def test_atomic_directory_overwrite_swaps_and_keeps_old_on_failure(tmp_path):
    final = tmp_path / "out"
    _write(final, "old", "old")
    with pytest.raises(RuntimeError):
        with atomic_directory(final, overwrite=True) as tmp:
            (tmp / "new").write_text("new")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in final.iterdir()) == ["old"]
    with atomic_directory(final, overwrite=True) as tmp:
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new"]
    assert _siblings(final) == ["out"]  # the old copy renamed aside is gone too


def test_atomic_directory_refuses_to_replace_a_file(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(BundleError, match="not a folder"):
        with atomic_directory(tmp_path / "out", overwrite=True):
            pass
    assert (tmp_path / "out").read_text() == "a file"


def test_atomic_write_text_replaces_without_leftovers(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two" and _siblings(path) == ["x.json"]
    assert path.stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------- detect_kind


@pytest.mark.parametrize("make, expected", [
    (lambda p: fake_pipeline(p, "StableDiffusionGLIGENPipeline"), "gligen"),
    (lambda p: fake_pipeline(p, "StableDiffusionPipeline"), "img2img"),
    (lambda p: fake_pipeline(p, "StableDiffusionXLPipeline"), "img2img"),
    (lambda p: fake_pipeline(p, "StableDiffusionXLImg2ImgPipeline"), "img2img"),
    (lambda p: fake_transformers(p, "CLIPModel"), "clip"),
    (lambda p: fake_transformers(p, "LlamaForCausalLM"), "causal-lm"),
])
def test_detect_kind(tmp_path, make, expected):
    assert detect_kind(make(tmp_path / "m")) == expected


@pytest.mark.parametrize("make, expected", [
    (lambda p: fake_pipeline(p, "FluxPipeline"), "unsupported pipeline _class_name 'FluxPipeline'"),
    (lambda p: fake_transformers(p, "BertModel"), "unsupported architectures ['BertModel']"),
    (lambda p: _write(p, "weights.safetensors", b"x"), "no model_index.json"),
])
def test_detect_kind_unknown(tmp_path, make, expected):
    (tmp_path / "m").mkdir()
    make(tmp_path / "m")
    with pytest.raises(BundleError) as info:
        detect_kind(tmp_path / "m")
    assert expected in str(info.value)


# ---------------------------------------------------------------- create refusals


def test_create_checks_required_roles_before_copying(tmp_path, srcs, monkeypatch):
    monkeypatch.setattr(create_mod, "_copy_component", lambda *a: pytest.fail("copied"))
    with pytest.raises(BundleError, match="missing required role 'scorer'"):
        create_bundle(tmp_path / "out", {"drafter": srcs["drafter"]})
    with pytest.raises(BundleError, match="unknown role 'painter'"):
        create_bundle(tmp_path / "out", {**srcs, "painter": srcs["drafter"]})
    with pytest.raises(BundleError, match="options given for role 'planner'"):
        create_bundle(tmp_path / "out", srcs, options={"planner": {}})
    with pytest.raises(BundleError, match="options for drafter are not JSON-able"):
        create_bundle(tmp_path / "out", srcs, options={"drafter": {"x": object()}})
    with pytest.raises(BundleError, match="dtype 'float8'"):
        create_bundle(tmp_path / "out", srcs, dtype="float8")
    assert not (tmp_path / "out").exists()


def test_create_refuses_wrong_kind_for_role(tmp_path, srcs):
    with pytest.raises(BundleError) as info:
        create_bundle(tmp_path / "out", {"drafter": srcs["refiner"], "scorer": srcs["scorer"]})
    assert "is a 'img2img' model but the drafter must be 'gligen'" in str(info.value)
    assert _siblings(tmp_path / "out") == ["src"]


def test_create_refuses_missing_source_and_non_hub_strings(tmp_path, srcs):
    with pytest.raises(BundleError, match="source for scorer: 'no/such/dir' is neither"):
        create_bundle(tmp_path / "out", {"drafter": srcs["drafter"], "scorer": "no/such/dir"})
    with pytest.raises(BundleError, match="source for scorer: .* is not a directory"):
        create_bundle(tmp_path / "out", {"drafter": srcs["drafter"],
                                         "scorer": srcs["scorer"] / "config.json"})


def test_create_refuses_existing_output_without_overwrite(tmp_path, srcs, bundle):
    before = (bundle / "bundle.json").read_text()
    with pytest.raises(BundleError, match="already exists"):
        create_bundle(bundle, srcs)
    assert (bundle / "bundle.json").read_text() == before
    manifest = create_bundle(bundle, srcs, overwrite=True)
    assert set(load_bundle(bundle).components) == set(manifest.components) == set(srcs)


def test_create_refuses_output_inside_a_source(srcs):
    with pytest.raises(BundleError, match="overlaps the drafter source"):
        create_bundle(srcs["drafter"] / "bundle", srcs)


def test_interrupted_create_leaves_nothing(tmp_path, srcs, monkeypatch):
    real_copy = create_mod._copy_component
    calls = []

    def copy_then_fail(src, dest, skip):
        calls.append(dest)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C mid-copy
        real_copy(src, dest, skip)

    monkeypatch.setattr(create_mod, "_copy_component", copy_then_fail)
    with pytest.raises(KeyboardInterrupt):
        create_bundle(tmp_path / "out", srcs)
    assert len(calls) == 3 and _siblings(tmp_path / "out") == ["src"]


def test_create_refuses_pickle_only_source(tmp_path, srcs):
    (srcs["scorer"] / "model.safetensors").unlink()
    _write(srcs["scorer"], "pytorch_model.bin", b"pickle")
    with pytest.raises(BundleError, match="no \\*.safetensors weights"):
        create_bundle(tmp_path / "out", srcs)
    _write(srcs["scorer"], "vision/model.safetensors", b"w")  # safetensors, but not beside it
    with pytest.raises(BundleError, match="pytorch_model.bin: pickled weights without"):
        create_bundle(tmp_path / "out", srcs)
    assert not (tmp_path / "out").exists()


def test_create_skips_pickles_beside_safetensors_with_warning(tmp_path, srcs):
    _write(srcs["drafter"], "unet/diffusion_pytorch_model.bin", b"pickle")
    _write(srcs["drafter"], "unet/__pycache__/x.pyc", b"bytecode")
    with pytest.warns(UserWarning, match="drafter: skipping 1 pickled .*pytorch_model.bin"):
        manifest = create_bundle(tmp_path / "out", srcs)
    assert "unet/diffusion_pytorch_model.bin" not in manifest.components["drafter"].files
    assert not (tmp_path / "out/drafter/unet/diffusion_pytorch_model.bin").exists()
    assert not (tmp_path / "out/drafter/unet/__pycache__").exists()
    load_bundle(tmp_path / "out")


# ---------------------------------------------------------------- hub ids (no network)


def _fake_hub(monkeypatch, repos: dict[str, Path], calls: list):
    """Patch snapshot_download to 'download' from local folders, honouring allow_patterns."""
    import huggingface_hub

    def snapshot_download(repo_id, *, local_dir, allow_patterns, **kw):
        calls.append((repo_id, list(allow_patterns)))
        if repo_id not in repos:
            raise RuntimeError(f"404 Client Error\nRepository Not Found for {repo_id}")
        for rel in hashing_mod.list_files(repos[repo_id]):
            if any(fnmatch.fnmatch(rel, pat) for pat in allow_patterns):
                _write(Path(local_dir), rel, (repos[repo_id] / rel).read_bytes())
        _write(Path(local_dir), ".cache/huggingface/download/x.metadata", "meta")
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


def test_create_from_hub_id_downloads_only_safe_files(tmp_path, srcs, monkeypatch):
    _write(srcs["scorer"], "pytorch_model.bin", b"pickle")
    _write(srcs["scorer"], "flax_model.msgpack", b"flax")
    calls = []
    _fake_hub(monkeypatch, {"openai/clip-fake": srcs["scorer"]}, calls)
    manifest = create_bundle(tmp_path / "out",
                             {"drafter": srcs["drafter"], "scorer": "openai/clip-fake"})
    assert calls[0][0] == "openai/clip-fake"
    assert not any(fnmatch.fnmatch("pytorch_model.bin", p) for p in calls[0][1])
    assert sorted(manifest.components["scorer"].files) == [
        "config.json", "model.safetensors", "tokenizer.json"]
    assert not (tmp_path / "out/scorer/.cache").exists()
    assert load_bundle(tmp_path / "out") == manifest


def test_hub_failures_are_one_line_and_leave_nothing(tmp_path, srcs, monkeypatch):
    calls = []
    _fake_hub(monkeypatch, {"org/llm": srcs["rewriter"]}, calls)
    with pytest.raises(BundleError) as info:
        create_bundle(tmp_path / "out", {"drafter": srcs["drafter"], "scorer": "org/missing"})
    assert str(info.value) == ("scorer: download of 'org/missing' failed: RuntimeError: "
                               "404 Client Error")
    with pytest.raises(BundleError, match="is a 'causal-lm' model but the scorer must be 'clip'"):
        create_bundle(tmp_path / "out", {"drafter": srcs["drafter"], "scorer": "org/llm"})
    assert _siblings(tmp_path / "out") == ["src"]
