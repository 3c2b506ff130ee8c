"""Regional prompts: the packed context, the cross-attention mask, its routing (a phrase
reaches only the tokens in its box), equivalence with plain cross-attention when no region is
given, the drafter option, both engines and the ONNX export."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from t2i_engines.regional_prompts import (REGION_CHANNELS, RegionalPrompts, pack_context,
                                          region_channels)

TOKENS = 77
BOXES = [(0.0, 0.0, 0.5, 1.0), (0.75, 0.75, 1.0, 1.0)]  # left half; bottom-right cell of 4x4


def test_region_channels_mark_each_phrase_block_with_its_box():
    channels = region_channels(BOXES, TOKENS)
    assert channels.shape == (3 * TOKENS, REGION_CHANNELS)
    assert not channels[:TOKENS].any()  # the background block has no region
    assert channels[TOKENS:2 * TOKENS].tolist() == [[0.0, 0.0, 0.5, 1.0, 1.0]] * TOKENS
    assert channels[2 * TOKENS:].tolist() == [[0.75, 0.75, 1.0, 1.0, 1.0]] * TOKENS
    packed = pack_context(np.ones((2, 3 * TOKENS, 8), np.float32), channels)
    assert packed.shape == (2, 3 * TOKENS, 8 + REGION_CHANNELS)
    assert (packed[1, :, 8:] == channels).all() and (packed[..., :8] == 1).all()
    assert not pack_context(np.ones((1, TOKENS, 8), np.float32))[..., 8:].any()


def test_texts_put_the_background_first_and_template_each_phrase():
    caption = RegionalPrompts("a photo of {}", "caption")
    layout = RegionalPrompts("a photo of {}", "layout")
    phrases = ["a red star", "a blue circle"]
    prompt = "a red star and a blue circle in a field"
    assert caption.texts(prompt, phrases, "in a field") == [
        prompt, "a photo of a red star", "a photo of a blue circle"]
    assert layout.texts(prompt, phrases, "in a field")[0] == "in a field"
    assert layout.texts(prompt, phrases, None)[0] == ""  # no background: the empty prompt
    assert RegionalPrompts.from_option(None) is None
    assert RegionalPrompts.from_option({"background": "layout"}) == RegionalPrompts("{}", "layout")


@pytest.mark.parametrize("bad, message", [
    ({"template": "no placeholder"}, "one '{}'"),
    ({"template": "{} and {}"}, "one '{}'"),
    ({"template": "{{}}"}, "one '{}'"),  # an escaped brace: the phrase would be dropped
    ({"template": "{x} {}"}, "one '{}'"),
    ({"template": "a {}}"}, "one '{}'"),
    ({"background": "sky"}, "caption, layout"),
])
def test_bad_settings_name_what_is_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        RegionalPrompts.from_option(bad)


@pytest.mark.parametrize("value, ok", [
    (None, True), ({"template": "a photo of {}", "background": "layout"}, True), ({}, True),
    ({"template": "x"}, False), ({"template": "{{}}"}, False), ({"background": "sky"}, False),
    ({"size": 1}, False), ("on", False), (True, False),
])
def test_the_drafter_option_is_checked_when_a_bundle_is_read(value, ok):
    from t2i_sdk.bundle.options import check_options
    from t2i_sdk.errors import BundleError

    options = {"regional_prompts": value}
    if ok:
        assert check_options("drafter", options, "bundle.json") == options
    else:
        with pytest.raises(BundleError, match="regional_prompts must be"):
            check_options("drafter", options, "bundle.json")


# ---- torch -----------------------------------------------------------------------------

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")


def packed(context: "torch.Tensor", boxes) -> "torch.Tensor":
    channels = region_channels(boxes, TOKENS) if boxes else None
    return torch.from_numpy(pack_context(context.numpy(), channels))


def test_a_phrase_is_visible_only_in_its_box_and_the_background_only_outside():
    from t2i_engines.pytorch.regional_attention import regional_visibility

    regions = torch.from_numpy(region_channels(BOXES, 1))[None]  # one token per block
    seen = regional_visibility(regions[..., :4], regions[..., 4], 16)[0]  # (16 cells, 3 keys)
    grid = seen.reshape(4, 4, 3)
    assert grid[:, :2, 1].all() and not grid[:, 2:, 1].any()  # phrase 1: the left half
    assert grid[3, 3, 2] and grid[..., 2].sum() == 1  # phrase 2: the bottom-right cell
    background = ~(grid[..., 1] | grid[..., 2])
    assert (grid[..., 0] == background).all()  # the rest reads the background block
    assert (seen.sum(dim=-1) >= 1).all()  # every visual token reads something


@pytest.fixture(scope="module")
def cross_attention():
    from diffusers.models.attention_processor import Attention

    from t2i_engines.pytorch.regional_attention import RegionalCrossAttnProcessor

    torch.manual_seed(0)
    attn = Attention(query_dim=16, cross_attention_dim=8, heads=2, dim_head=8).eval()
    attn.set_processor(RegionalCrossAttnProcessor())
    return attn


def test_changing_a_phrase_changes_only_the_tokens_in_its_box(cross_attention):
    g = torch.Generator().manual_seed(1)
    visual = torch.randn(1, 16, 16, generator=g)
    context = torch.randn(1, 3 * TOKENS, 8, generator=g)
    other = context.clone()
    other[:, 2 * TOKENS:] = torch.randn(1, TOKENS, 8, generator=g)  # a new second phrase
    with torch.no_grad():
        a = cross_attention(visual, packed(context, BOXES))
        b = cross_attention(visual, packed(other, BOXES))
    changed = (a - b).abs().amax(dim=-1)[0].reshape(4, 4) > 1e-6
    assert changed[3, 3] and changed.sum() == 1


def test_without_regions_it_is_plain_cross_attention(cross_attention):
    from diffusers.models.attention_processor import AttnProcessor2_0

    g = torch.Generator().manual_seed(2)
    visual, context = torch.randn(2, 16, 16, generator=g), torch.randn(2, TOKENS, 8, generator=g)
    with torch.no_grad():
        regional_packed = cross_attention(visual, packed(context, None))
        regional_plain = cross_attention(visual, context)
        cross_attention.set_processor(AttnProcessor2_0())
        try:
            plain = cross_attention(visual, context)
        finally:
            from t2i_engines.pytorch.regional_attention import RegionalCrossAttnProcessor
            cross_attention.set_processor(RegionalCrossAttnProcessor())
    torch.testing.assert_close(regional_packed, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(regional_plain, plain, rtol=0, atol=0)


def test_make_regional_changes_only_the_cross_attention(tiny_gligen_dir):
    from diffusers import UNet2DConditionModel

    from t2i_engines.pytorch.regional_attention import RegionalCrossAttnProcessor, make_regional

    unet = UNet2DConditionModel.from_pretrained(tiny_gligen_dir / "unet").eval()
    n = make_regional(unet)
    processors = unet.attn_processors
    assert n == sum(name.endswith("attn2.processor") for name in processors) > 0
    for name, processor in processors.items():
        assert isinstance(processor, RegionalCrossAttnProcessor) == name.endswith("attn2.processor")
    assert make_regional(unet) == n  # idempotent


REGIONAL = {"template": "a photo of {}", "background": "layout"}
ARGS = ("a red apple and a blue cup", ["a red apple", "a blue cup"],
        [(0.0, 0.0, 0.5, 0.5), (0.5, 0.5, 1.0, 1.0)], [3, 4], 3)


@pytest.fixture(scope="module")
def torch_engines(tiny_gligen_dir):
    from t2i_engines.pytorch.gligen_drafter import GligenDrafterEngine

    return {"plain": GligenDrafterEngine.load(tiny_gligen_dir, device="cpu"),
            "regional": GligenDrafterEngine.load(tiny_gligen_dir, device="cpu",
                                                 regional_prompts=REGIONAL)}


def _pixels(images) -> np.ndarray:
    return np.stack([np.asarray(im, np.int16) for im in images])


def test_the_torch_engine_drafts_with_regional_prompts(torch_engines):
    plain = _pixels(torch_engines["plain"].generate(*ARGS))
    regional = torch_engines["regional"]
    a = _pixels(regional.generate(*ARGS))
    assert a.shape == plain.shape and np.abs(a - plain).max() > 0
    assert (_pixels(regional.generate(*ARGS)) == a).all()  # deterministic
    # background "layout": the layout's background phrase is what the rest of the image reads
    assert np.abs(_pixels(regional.generate(*ARGS, background="in a field")) - a).max() > 0
    # no phrases: plain text-to-image, identical to the engine without the option
    assert (_pixels(regional.generate("a red apple", [], [], [3], 3))
            == _pixels(torch_engines["plain"].generate("a red apple", [], [], [3], 3))).all()


# ---- ONNX --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def regional_onnx(tiny_gligen_dir, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from t2i_export.onnx.gligen_export import export_gligen

    out = tmp_path_factory.mktemp("regional") / "onnx"
    manifest = export_gligen(tiny_gligen_dir, out, regional=True)
    return out, manifest


def test_the_onnx_unet_matches_torch_for_any_number_of_objects(tiny_gligen_dir, regional_onnx):
    from t2i_engines.onnxruntime.session import OrtModel
    from t2i_export.onnx.gligen_export import GRAPH_IO, example_inputs, load_graph_module
    from t2i_export.onnx.graph import max_abs_rel_error

    out, manifest = regional_onnx
    assert manifest["pipeline"]["regional_prompts"] is True
    assert manifest["graphs"]["unet"]["options"]["regional"] is True
    reference = load_graph_module(tiny_gligen_dir, "unet", regional=True)
    graph = OrtModel.load(out / "unet" / "model.onnx", device="cpu")
    for boxes in ([], BOXES[:1], BOXES + [(0.2, 0.6, 0.4, 0.9)]):  # 77, 154 and 308 tokens
        args = list(example_inputs("unet", manifest["pipeline"], batch=2, seed=5))
        blocks = torch.randn(2, TOKENS * (1 + len(boxes)), args[2].shape[-1] - REGION_CHANNELS)
        args[2] = packed(blocks, boxes)
        with torch.no_grad():
            expected = reference(*args)
        got = graph.run({n: a.numpy() for n, a in zip(GRAPH_IO["unet"][0], args)})["out_sample"]
        assert max_abs_rel_error(got, expected.numpy())[1] < 1e-4


def test_the_onnx_engine_drafts_what_the_torch_engine_drafts(torch_engines, regional_onnx):
    from t2i_engines.onnxruntime.gligen_drafter import OrtGligenDrafterEngine

    out, _ = regional_onnx
    ort = OrtGligenDrafterEngine.load(out, device="cpu", regional_prompts=REGIONAL)
    for args, kwargs in ((ARGS, {}), (ARGS, {"background": "in a field"}),
                         (("a red apple", [], [], [3], 3), {})):
        got = _pixels(ort.generate(*args, **kwargs))
        expected = _pixels(torch_engines["regional"].generate(*args, **kwargs))
        assert np.abs(got - expected).max() <= 2  # uint8 rounding of nearly equal floats
    # the same export without the option is plain cross-attention (zero region channels)
    off = OrtGligenDrafterEngine.load(out, device="cpu")
    plain = _pixels(torch_engines["plain"].generate(*ARGS))
    assert np.abs(_pixels(off.generate(*ARGS)) - plain).max() <= 2


def test_the_option_on_an_export_without_it_is_refused(tiny_gligen_onnx):
    from t2i_engines.onnxruntime.gligen_drafter import OrtGligenDrafterEngine

    with pytest.raises(ValueError, match="exported without regional cross-attention"):
        OrtGligenDrafterEngine.load(tiny_gligen_onnx, device="cpu", regional_prompts=REGIONAL)


def test_tensorrt_profiles_cover_the_regional_context(regional_onnx):
    pytest.importorskip("onnx")
    from t2i_export.tensorrt.build import CONTEXT_TOKENS, default_profiles

    out, _ = regional_onnx
    profile = default_profiles(out / "unet" / "model.onnx")
    low, opt, high = profile.shapes("encoder_hidden_states")
    assert (low[1], opt[1], high[1]) == CONTEXT_TOKENS == (77, 231, 31 * 77)


def test_the_option_is_part_of_the_export_stamp():
    from t2i_export.onnx_step import OnnxOptions, is_regional, onnx_stamp

    files = {"unet/config.json": "0" * 64}
    off = onnx_stamp(files, OnnxOptions(), "gligen", {"guidance_scale": 4.0})
    on = onnx_stamp(files, OnnxOptions(), "gligen", {"regional_prompts": REGIONAL})
    assert off != on and "regional" not in json.dumps(off)
    # {} is the default settings for the engines, so the export must be regional too
    assert is_regional({"regional_prompts": {}}) and not is_regional({"regional_prompts": None})


def test_a_regional_export_runs_at_its_sample_size_only(regional_onnx):
    from t2i_engines.onnxruntime.gligen_drafter import OrtGligenDrafterEngine

    out, manifest = regional_onnx
    side = manifest["pipeline"]["sample_size"] * manifest["pipeline"]["vae_scale_factor"]
    small = OrtGligenDrafterEngine.load(out, device="cpu", height=side // 2, width=side // 2)
    with pytest.raises(ValueError, match="regional and runs at"):
        small.generate(*ARGS)


def test_the_torch_engine_refuses_regional_prompts_on_a_non_square_image(tiny_gligen_dir):
    from t2i_engines.pytorch.gligen_drafter import GligenDrafterEngine

    with pytest.raises(ValueError, match="square image"):
        GligenDrafterEngine.load(tiny_gligen_dir, device="cpu", height=64, width=32,
                                 regional_prompts=REGIONAL)


def test_a_bundle_with_the_option_drafts_regionally_through_the_pipeline(tiny_bundle, tmp_path):
    from t2i_sdk.pipeline import Pipeline

    bundle = shutil.copytree(tiny_bundle, tmp_path / "b")
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["components"]["drafter"]["options"]["regional_prompts"] = REGIONAL
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    pipe = Pipeline.from_pretrained(bundle, device="cpu", calibrate=False)
    assert pipe.drafter.engine.regional == RegionalPrompts(**REGIONAL)
    result = pipe("a red apple left of a blue cup", seed=1, n_drafts=1, rounds=0,
                  planner="rule", rewriter="identity", n_rewrites=1)
    assert result.image.size[0] > 0


def test_int8_calibration_drafts_with_the_bundles_regional_prompts(regional_onnx):
    from t2i_export.onnx.calibration import _drafter

    out, _ = regional_onnx
    engine = _drafter(out, out / "unet" / "model.onnx", {"regional_prompts": REGIONAL})
    assert engine.regional == RegionalPrompts(**REGIONAL)


def test_tensorrt_builds_a_fixed_grid_unet_at_its_sample_size_only(regional_onnx, tmp_path,
                                                                  monkeypatch):
    pytest.importorskip("onnx")
    import t2i_export.tensorrt.build as trt_build
    from t2i_export.tensorrt_step import build_component_tensorrt

    built = {}
    monkeypatch.setattr(trt_build, "build_engine",
                        lambda graph, engine, *, profile, **kw: built.setdefault(graph.parent.name,
                                                                                 profile))
    out, manifest = regional_onnx
    build_component_tensorrt(out, tmp_path / "trt", timing_cache=tmp_path / "cache")
    latent = manifest["pipeline"]["sample_size"]
    low, opt, high = built["unet"].shapes("sample")
    assert low[2:] == opt[2:] == high[2:] == (latent, latent)
