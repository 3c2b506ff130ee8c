"""Component options: one table of known keys per role, checked when bundle.json is read (so
at ``Pipeline.from_pretrained``, not at the first generate) and when a bundle is created;
``t2i bundle create`` keeps options (``--from-bundle``, ``--options``, ``--option``)."""
from __future__ import annotations

import dataclasses
import inspect
import json
import re
import shutil
from pathlib import Path

import pytest

from t2i_sdk.bundle import create_bundle, read_manifest
from t2i_sdk.bundle.option_args import (merge_options, options_from_assignments,
                                        options_from_files)
from t2i_sdk.bundle.options import ROLE_OPTIONS, check_options, engine_kwargs
from t2i_sdk.bundle.tiny import TINY_OPTIONS
from t2i_sdk.cli.main import main
from t2i_sdk.config import RewriteConfig, config_from_options
from t2i_sdk.errors import BundleError, InputError
from t2i_sdk.planning.box_geometry import GeometryConfig
from test_bundle import fake_pipeline, fake_transformers

REPO = Path(__file__).resolve().parents[1]
SHAPES = REPO / "bundles" / "shapes"

# ---------------------------------------------------------------- the table


def test_every_shipped_options_dict_passes():
    for role, options in TINY_OPTIONS.items():
        assert check_options(role, options, "tiny") == options
    shapes = json.loads((SHAPES / "bundle.json").read_text())
    for role, entry in shapes["components"].items():
        check_options(role, entry["options"], "shapes")
    rewrite = json.loads((REPO / "bundles" / "rewriter-smollm2" / "rewrite.json").read_text())
    check_options("rewriter", rewrite, "rewrite.json")


def test_rewriter_keys_are_exactly_the_rewrite_config_fields():
    assert list(ROLE_OPTIONS["rewriter"]) == [f.name for f in dataclasses.fields(RewriteConfig)]


@pytest.mark.parametrize("role, options, needles", [
    ("drafter", {"guidance": 3}, ["drafter", "'guidance'", "guidance_scale, height, width, "
                                  "gligen_beta, regional_prompts, layout"]),
    ("scorer", {"batch_size": 8}, ["scorer", "'batch_size'", "known for a scorer: lam"]),
    ("refiner", {"steps": 2}, ["refiner", "'steps'", "refine_strength, refine_steps, round_gains"]),
    ("rewriter", {"temp": 1}, ["rewriter", "'temp'", "temperature, top_p"]),
    ("planner", {"temperature": 1}, ["planner", "'temperature'", "known for a planner: "
                                     "system_prompt"]),
])
def test_unknown_keys_name_the_role_the_key_and_the_known_keys(role, options, needles):
    with pytest.raises(BundleError) as info:
        check_options(role, options, "bundle.json")
    msg = str(info.value)
    assert msg.startswith("bundle.json: ") and "\n" not in msg
    for needle in needles:
        assert needle in msg


@pytest.mark.parametrize("role, key, value", [
    ("drafter", "guidance_scale", "high"), ("drafter", "guidance_scale", True),
    ("drafter", "guidance_scale", -1), ("drafter", "guidance_scale", float("nan")),
    ("drafter", "guidance_scale", 10 ** 400), ("drafter", "height", 64.5),
    ("drafter", "height", 60), ("drafter", "width", "64"), ("drafter", "gligen_beta", 1.5),
    ("drafter", "layout", 3), ("drafter", "layout", {"max_side": "big"}),
    ("refiner", "guidance_scale", None), ("refiner", "refine_strength", 0),
    ("refiner", "refine_steps", 2.5), ("refiner", "refine_steps", 0),
    ("refiner", "round_gains", []), ("refiner", "round_gains", [0.1, -0.1]),
    ("refiner", "round_gains", 0.2), ("scorer", "lam", 1.5), ("scorer", "lam", "half"),
    ("rewriter", "system_prompt", ""), ("rewriter", "examples", [["only one"]]),
    ("rewriter", "examples", "a, b"), ("rewriter", "temperature", "warm"),
    ("rewriter", "top_p", 0), ("rewriter", "max_new_tokens", 1.0),
    ("rewriter", "layout_from", "box"), ("planner", "system_prompt", 3),
])
def test_wrongly_typed_values_are_refused_naming_the_key(role, key, value):
    with pytest.raises(BundleError) as info:
        check_options(role, {key: value}, "bundle.json")
    msg = str(info.value)
    assert role in msg and key in msg and "\n" not in msg and len(msg) < 400


@pytest.mark.parametrize("layout, needle", [
    ({"max_side": 0.3, "max_aspect": 0.5}, "max_aspect must be >= 1"),
    ({"max_sid": 0.3}, "unknown key 'max_sid' (known: margin, max_side, max_aspect)"),
])
def test_layout_values_get_the_geometry_configs_own_checks(layout, needle):
    with pytest.raises(BundleError, match=r"drafter options: layout: .*" + re.escape(needle)):
        check_options("drafter", {"layout": layout}, "bundle.json")


def test_good_values_pass_and_null_size_means_the_models_default():
    check_options("drafter", {"guidance_scale": 4, "height": None, "width": 512,
                              "gligen_beta": 0.3, "layout": {"max_side": 0.34}}, "x")
    check_options("refiner", {"guidance_scale": 0.0, "refine_strength": 1, "refine_steps": 4},
                  "x")
    check_options("rewriter", {"examples": [["a", "b"]], "layout_from": "rewrite"}, "x")
    check_options("planner", {"system_prompt": None}, "x")


def test_engine_kwargs_are_what_the_engines_load_takes():
    """Every engine option of the table is a parameter of each engine's ``load``."""
    pytest.importorskip("torch")
    from t2i_engines.pytorch.gligen_drafter import GligenDrafterEngine
    from t2i_engines.pytorch.img2img_refiner import Img2ImgRefinerEngine

    engines = {"drafter": [GligenDrafterEngine], "refiner": [Img2ImgRefinerEngine]}
    try:
        from t2i_engines.onnxruntime.gligen_drafter import OrtGligenDrafterEngine
        from t2i_engines.onnxruntime.img2img_refiner import OrtImg2ImgRefinerEngine
        engines["drafter"].append(OrtGligenDrafterEngine)
        engines["refiner"].append(OrtImg2ImgRefinerEngine)
    except ImportError:
        pass
    for role, classes in engines.items():
        keys = set(engine_kwargs(role, {k: None for k in ROLE_OPTIONS[role]}))
        for cls in classes:
            assert keys <= set(inspect.signature(cls.load).parameters), (role, cls)
    assert engine_kwargs("drafter", {"layout": {}, "height": 64}) == {"height": 64}
    assert engine_kwargs("rewriter", {"temperature": 1.0}) == {}


def test_config_from_options_is_strict():
    assert config_from_options(GeometryConfig, {"max_side": 0.5}).max_side == 0.5
    with pytest.raises(InputError, match=r"unknown RewriteConfig option 'temp' \(known: "
                                         r"system_prompt, examples, temperature"):
        config_from_options(RewriteConfig, {"temp": 0.7})


# ---------------------------------------------------------------- when a bundle is read


def _manifest(drafter_options: dict) -> dict:
    files = {"model_index.json": "0" * 64}
    entry = {"kind": "gligen", "engine": "torch", "path": "drafter", "dtype": "float32",
             "files": files, "options": drafter_options}
    scorer = {**entry, "kind": "clip", "path": "scorer", "options": {}}
    return {"schema_version": 1, "name": "x", "created_by": "t", "components": {
        "drafter": entry, "scorer": scorer}}


def test_read_manifest_refuses_bad_options(tmp_path):
    (tmp_path / "bundle.json").write_text(json.dumps(_manifest({"guidance_scale": "high"})))
    with pytest.raises(BundleError, match=r"bundle.json: drafter options: guidance_scale must "
                                          r"be a finite number >= 0, got 'high'"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("role, options, needle", [
    ("drafter", {"guidance_scale": "high"}, "guidance_scale"),
    ("drafter", {"height": 64.5}, "height"),
    ("drafter", {"layout": 3}, "layout"),
    ("refiner", {"refine_stepz": 2}, "refine_stepz"),
    ("rewriter", {"temperature": "hot"}, "temperature"),
    ("planner", {"system_prompt": ["a"]}, "system_prompt"),
])
def test_from_pretrained_refuses_bad_options_before_loading_any_model(
        tiny_bundle, tmp_path, monkeypatch, role, options, needle):
    from t2i_sdk import Pipeline
    from t2i_sdk import loading

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "bundle.json").read_text())
    manifest["components"][role]["options"].update(options)
    (copy / "bundle.json").write_text(json.dumps(manifest))
    loaded = []
    monkeypatch.setattr(loading, "load_component", lambda *a: loaded.append(a))
    with pytest.raises(BundleError) as info:
        Pipeline.from_pretrained(copy, device="cpu", calibrate=False)
    msg = str(info.value)
    assert f"{role} options" in msg and needle in msg and "known for a" in msg
    assert loaded == []  # refused before any engine was built


# ---------------------------------------------------------------- when a bundle is created


@pytest.fixture
def srcs(tmp_path: Path) -> dict[str, Path]:
    base = tmp_path / "src"
    return {"drafter": fake_pipeline(base / "gligen", "StableDiffusionGLIGENPipeline"),
            "scorer": fake_transformers(base / "clip", "CLIPModel")}


def test_create_refuses_unknown_option_keys_before_copying(tmp_path, srcs):
    with pytest.raises(BundleError, match="unknown key 'guidance'.*known for a drafter"):
        create_bundle(tmp_path / "out", srcs, options={"drafter": {"guidance": 3}})
    assert not (tmp_path / "out").exists()


def test_option_assignments_parse_json_values_nested_keys_and_plain_strings():
    got = options_from_assignments(["drafter.guidance_scale=3", "drafter.layout.max_side=0.3",
                                    "drafter.layout.max_aspect=1",
                                    "planner.system_prompt=Be brief.",
                                    "drafter.height=null"])
    assert got == {"drafter": {"guidance_scale": 3, "height": None,
                               "layout": {"max_side": 0.3, "max_aspect": 1}},
                   "planner": {"system_prompt": "Be brief."}}


@pytest.mark.parametrize("pairs, needle", [
    (["drafter"], "expected ROLE.KEY=VALUE"), (["drafter.=3"], "expected ROLE.KEY=VALUE"),
    (["painter.x=3"], "unknown role 'painter'"), (["drafter.a=1", "drafter.a.b=2"], "already"),
])
def test_bad_option_assignments(pairs, needle):
    with pytest.raises(InputError, match=needle):
        options_from_assignments(pairs)


def test_options_files_and_merge_order(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"guidance_scale": 2, "layout": {"max_side": 0.5}}))
    files = options_from_files([f"drafter={tmp_path / 'd.json'}"])
    merged = merge_options({"drafter": {"guidance_scale": 1, "height": 64,
                                        "layout": {"max_aspect": 1.0}}},
                           files, {"drafter": {"layout": {"max_side": 0.3}}})
    assert merged == {"drafter": {"guidance_scale": 2, "height": 64,
                                  "layout": {"max_aspect": 1.0, "max_side": 0.3}}}
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(InputError, match="must hold a JSON object"):
        options_from_files([f"drafter={tmp_path / 'bad.json'}"])
    with pytest.raises(InputError, match="cannot read"):
        options_from_files([f"drafter={tmp_path / 'missing.json'}"])


def _shapes_sources() -> list[str]:
    return ["--drafter", str(SHAPES / "drafter"), "--scorer", str(SHAPES / "scorer"),
            "--refiner", str(SHAPES / "refiner")]


def _options(bundle: Path) -> dict:
    manifest = json.loads((bundle / "bundle.json").read_text())
    return {role: entry["options"] for role, entry in manifest["components"].items()}


def test_cli_reassembling_shapes_with_its_options_gives_the_same_options(tmp_path):
    out = tmp_path / "shapes-again"
    assert main(["bundle", "create", *_shapes_sources(), "--from-bundle", str(SHAPES),
                 "--quiet", str(out)]) == 0
    assert _options(out) == _options(SHAPES)
    assert read_manifest(out).components["drafter"].files == read_manifest(
        SHAPES).components["drafter"].files


def test_cli_options_files_and_single_options(tmp_path):
    shapes = _options(SHAPES)
    for role in ("drafter", "refiner"):
        (tmp_path / f"{role}.json").write_text(json.dumps(shapes[role]))
    out = tmp_path / "out"
    assert main(["bundle", "create", *_shapes_sources(), "--options",
                 f"drafter={tmp_path / 'drafter.json'}", "--options",
                 f"refiner={tmp_path / 'refiner.json'}", "--option", "refiner.refine_steps=3",
                 "--quiet", str(out)]) == 0
    assert _options(out) == {**shapes, "refiner": {**shapes["refiner"], "refine_steps": 3}}


def test_cli_without_options_keeps_none(tmp_path):
    out = tmp_path / "bare"
    assert main(["bundle", "create", *_shapes_sources(), "--quiet", str(out)]) == 0
    assert _options(out) == {"drafter": {}, "scorer": {}, "refiner": {}}


@pytest.mark.parametrize("extra, needle", [
    (["--option", "drafter.height=64.5"], "height must be an integer"),
    (["--option", "drafter.guidance=3"], "unknown key 'guidance'"),
    (["--option", "planner.system_prompt=x"], "role 'planner', which has no source"),
    (["--options", "drafter"], "expected ROLE=PATH.json"),
])
def test_cli_bad_options_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, extra, needle):
    out = tmp_path / "out"
    assert main(["bundle", "create", *_shapes_sources(), *extra, "--quiet", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert not out.exists()


def test_scorer_lam_and_refiner_round_gains_reach_the_pipeline_config(tiny_bundle, tmp_path):
    from t2i_sdk.bundle.manifest import read_manifest
    from t2i_sdk.loading import _pipeline_config

    copy = tmp_path / "b"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "bundle.json").read_text())
    manifest["components"]["scorer"]["options"] = {"lam": 0.8}
    manifest["components"]["refiner"].setdefault("options", {})["round_gains"] = [0, 0]
    (copy / "bundle.json").write_text(json.dumps(manifest))
    config = _pipeline_config(read_manifest(copy), None)
    assert config.lam == 0.8 and config.round_gains == (0.0, 0.0)
    assert _pipeline_config(read_manifest(tiny_bundle), None).round_gains == (0.3, 0.2, 0.05)
