"""Export a diffusers ``StableDiffusionGLIGENPipeline`` folder to three ONNX graphs.

Output folder::

    text_encoder/model.onnx  input_ids int64 [B, 77] -> last_hidden_state [B, 77, D],
                             pooler_output [B, D]
    unet/model.onnx          sample [B, 4, h, w], timestep float32 [B],
                             encoder_hidden_states [B, 77, D] (regional: [B, L, D + 5]),
                             gligen_boxes [B, 30, 4]
                             (x0, y0, x1, y1 in [0, 1]), gligen_positive_embeddings [B, 30, D],
                             gligen_masks [B, 30] (1 = slot used), gligen_scale float32 [1]
                             -> out_sample [B, 4, h, w]
    vae_decoder/model.onnx   latent [B, 4, h, w] (already divided by the VAE scaling factor)
                             -> image [B, 3, f*h, f*w] in [-1, 1] (f: VAE scale factor)
    tokenizer/, scheduler/, model_index.json   copied from the source
    onnx_export.json         what the graphs are (see ``write_manifest``)

One UNet serves both of the torch engine's paths: ``gligen_scale`` multiplies the two gated
residuals of every GLIGEN fuser, so 1.0 is the grounded UNet and 0.0 adds exactly zero, i.e.
the plain UNet that diffusers runs with the fuser disabled or without GLIGEN inputs (the
box inputs are then ignored). The price is that ungrounded steps still compute the fuser.
With ``regional=True`` (the drafter option ``regional_prompts``) every cross-attention is
regional (``t2i_engines.pytorch.regional_attention``): ``encoder_hidden_states`` is the packed
context of ``t2i_engines.regional_prompts``, L = 77 x (1 + objects) tokens with 5 region
channels behind each embedding (all zero: plain cross-attention over L = 77).
``timestep`` is a float32 vector so that integer (DDIM) and fractional (Euler) schedules share
one graph; diffusers casts timesteps to float before the sinusoidal embedding anyway.
Spatial axes are dynamic, but the trace fixed diffusers' branch for sizes its down-sampling
divides: image sides must be multiples of ``image_size_multiple`` (VAE factor x 2^(UNet
levels - 1), 64 for SD 1.x) -- the torch UNet pads other sizes, the graph rejects them.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from t2i_engines.box_mask_marker import is_box_masked
from t2i_engines.draft_args import MAX_GLIGEN_OBJECTS
from t2i_engines.regional_prompts import pack_context, region_channels
# MANIFEST_NAME, read_manifest and write_manifest stay importable from here.
from t2i_export.onnx.export_manifest import (MANIFEST_NAME, graph_entry,  # noqa: F401
                                             is_reusable, read_json, read_manifest,
                                             write_manifest)
from t2i_export.onnx.graph import (DEFAULT_OPSET, conversion_steps, export_converted,
                                   save_model)

if TYPE_CHECKING:
    import torch

MANIFEST_VERSION = 1
COPIED = ("tokenizer", "scheduler", "model_index.json")
# Names and dynamic axes of each graph: the contract with the onnxruntime engine.
TEXT_INPUTS, TEXT_OUTPUTS = ["input_ids"], ["last_hidden_state", "pooler_output"]
UNET_INPUTS = ["sample", "timestep", "encoder_hidden_states", "gligen_boxes",
               "gligen_positive_embeddings", "gligen_masks", "gligen_scale"]
UNET_OUTPUTS = ["out_sample"]
VAE_INPUTS, VAE_OUTPUTS = ["latent"], ["image"]
GRAPH_IO = {"text_encoder": (TEXT_INPUTS, TEXT_OUTPUTS), "unet": (UNET_INPUTS, UNET_OUTPUTS),
            "vae_decoder": (VAE_INPUTS, VAE_OUTPUTS)}
_SPATIAL = {0: "batch", 2: "height", 3: "width"}
DYNAMIC_AXES = {
    "text_encoder": {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"},
                     "pooler_output": {0: "batch"}},
    "unet": {"sample": _SPATIAL, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"},
             "gligen_boxes": {0: "batch"}, "gligen_positive_embeddings": {0: "batch"},
             "gligen_masks": {0: "batch"}, "out_sample": _SPATIAL},
    "vae_decoder": {"latent": _SPATIAL, "image": _SPATIAL},
}
# a regional UNet's context grows with the objects: 77 x (1 + K) tokens
REGIONAL_CONTEXT_AXES = {0: "batch", 1: "context_tokens"}


def dynamic_axes(name: str, *, regional: bool = False) -> dict:
    """Graph ``name``'s dynamic axes; a regional UNet's context length is dynamic too."""
    if name == "unet" and regional:
        return {**DYNAMIC_AXES["unet"], "encoder_hidden_states": REGIONAL_CONTEXT_AXES}
    return DYNAMIC_AXES[name]


def _wrapper_classes():
    """The wrapper classes, defined lazily so importing this module does not import torch."""
    import torch

    from t2i_engines.pytorch.gligen_box_mask import BoxMaskedFuser

    class TextEncoderGraph(torch.nn.Module):
        """CLIP text encoder without attention mask, as diffusers' SD ``encode_prompt`` runs it
        (the causal mask keeps the pooled EOS token blind to the padding after it)."""

        def __init__(self, text_encoder):
            super().__init__()
            self.text_encoder = text_encoder

        def forward(self, input_ids):
            out = self.text_encoder(input_ids=input_ids, return_dict=True)
            return out.last_hidden_state, out.pooler_output

    class ScalablePositionNet(torch.nn.Module):
        """GLIGEN's box/phrase projection, passing ``gligen_scale`` on to the fusers with the
        object tokens: the UNet hands whatever this returns to every fuser untouched."""

        def __init__(self, position_net):
            super().__init__()
            self.position_net = position_net

        def forward(self, boxes, masks, positive_embeddings, scale):
            return self.position_net(boxes=boxes, masks=masks,
                                     positive_embeddings=positive_embeddings), scale

    class ScalableFuser(torch.nn.Module):
        """``GatedSelfAttentionDense`` with both gated residuals multiplied by ``scale``."""

        def __init__(self, fuser):
            super().__init__()
            self.fuser = fuser

        def forward(self, x, objs_and_scale):
            objs, scale = objs_and_scale
            f = self.fuser
            if isinstance(f, BoxMaskedFuser):
                return f(x, objs, scale=scale)
            n_visual = x.shape[1]
            objs = f.linear(objs)
            attn = f.attn(f.norm1(torch.cat([x, objs], dim=1)))[:, :n_visual, :]
            x = x + scale * f.alpha_attn.tanh() * attn
            return x + scale * f.alpha_dense.tanh() * f.ff(f.norm2(x))

    class GligenUnetGraph(torch.nn.Module):
        """The GLIGEN UNet with flat inputs (see the module docstring)."""

        def __init__(self, unet):
            super().__init__()
            from diffusers.models.attention import GatedSelfAttentionDense

            for module in list(unet.modules()):
                fuser = getattr(module, "fuser", None)
                if isinstance(fuser, GatedSelfAttentionDense):
                    module.fuser = ScalableFuser(fuser)
            unet.position_net = ScalablePositionNet(unet.position_net)
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states, gligen_boxes,
                    gligen_positive_embeddings, gligen_masks, gligen_scale):
            gligen = {"boxes": gligen_boxes, "masks": gligen_masks,
                      "positive_embeddings": gligen_positive_embeddings, "scale": gligen_scale}
            return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                             cross_attention_kwargs={"gligen": gligen}, return_dict=False)[0]

    class VaeDecoderGraph(torch.nn.Module):
        """``AutoencoderKL.decode``: scaled-back latents -> image in [-1, 1]."""

        def __init__(self, vae):
            super().__init__()
            self.vae = vae

        def forward(self, latent):
            return self.vae.decode(latent, return_dict=False)[0]

    return TextEncoderGraph, GligenUnetGraph, VaeDecoderGraph


def load_graph_module(src_dir: Path, name: str, *, regional: bool = False) -> "torch.nn.Module":
    """The fp32 CPU torch module whose forward is exactly what graph ``name`` computes (also
    the reference the tests compare each graph with); ``regional``: regional cross-attention
    in the UNet."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    from t2i_engines.pytorch.gligen_box_mask import make_box_masked
    from t2i_engines.pytorch.regional_attention import make_regional

    src_dir = Path(src_dir)
    text_graph, unet_graph, vae_graph = _wrapper_classes()
    if name == "text_encoder":
        # Eager attention traces to plain MatMul/Softmax without SDPA's dispatch branches.
        module = text_graph(CLIPTextModel.from_pretrained(
            src_dir / "text_encoder", use_safetensors=True, attn_implementation="eager"))
    elif name == "unet":
        unet = UNet2DConditionModel.from_pretrained(src_dir / "unet", use_safetensors=True)
        if is_box_masked(src_dir / "unet"):
            make_box_masked(unet)
        if regional:
            make_regional(unet)
        module = unet_graph(unet)
    elif name == "vae_decoder":
        module = vae_graph(AutoencoderKL.from_pretrained(src_dir / "vae", use_safetensors=True))
    else:
        raise ValueError(f"unknown graph {name!r}; expected one of {', '.join(GRAPH_IO)}")
    return module.float().eval()


def export_gligen(src_dir: Path, out_dir: Path, *, fp16: bool = False,
                  int8_text_encoder: bool = False, int8_unet: bool = False,
                  calibration: dict | None = None, optimize: bool = True,
                  regional: bool = False,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Export the GLIGEN pipeline at ``src_dir`` into ``out_dir``; returns the manifest dict
    also written to ``out_dir/onnx_export.json``.

    ``fp16``: float16 weights and activations (inputs/outputs stay float32).
    ``int8_text_encoder``: dynamic int8 text encoder (from its fp32 graph; for CPU).
    ``int8_unet``: static QDQ int8 UNet (``graph.quantize_int8_static``; for CPU), calibrated
    on UNet inputs recorded while the fp32 UNet drafts ``calibration["prompts"]`` (with the
    text encoder and VAE decoder as exported here, so after an int8 text encoder if asked)
    (``t2i_export.onnx.calibration``; default ``calibration_settings(None)``: the engine's
    default guidance, size and grounding). Cannot be combined with ``fp16``.
    ``optimize``: onnxruntime's provider-independent offline optimisation before conversion.
    ``regional``: the UNet's cross-attention takes regional prompts (see the module docstring).
    ``progress``: called with one line per step. A graph whose source weights and options
    match the existing manifest, and whose files exist, is kept rather than re-exported.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    say = progress or (lambda message: None)
    if int8_unet and fp16:
        raise ValueError("int8_unet quantises the fp32 UNet for the CPU provider; it cannot be "
                         "combined with fp16 (use one or the other)")
    _check_source(src_dir)
    if int8_unet and calibration is None:
        from t2i_export.onnx.calibration import calibration_settings
        calibration = calibration_settings(None)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(out_dir) or {}
    pipeline = pipeline_settings(src_dir, regional=regional)
    graphs = {k: v for k, v in previous.get("graphs", {}).items() if k in GRAPH_IO}
    # The UNet last: a calibrated int8 UNet records its inputs from drafts that run the text
    # encoder and VAE decoder exported just before it. Tokenizer and scheduler are needed then.
    _copy_pipeline_files(src_dir, out_dir)
    for name, source in (("text_encoder", "text_encoder"), ("vae_decoder", "vae"),
                         ("unet", "unet")):
        options = {"fp16": fp16 and not (name == "text_encoder" and int8_text_encoder),
                   "int8": name == "text_encoder" and int8_text_encoder,
                   "optimize": optimize, "opset": DEFAULT_OPSET}
        if name == "unet" and int8_unet:
            options.update(int8=True, quantization="static-qdq", calibration=calibration)
        if name == "unet" and regional:  # only then, so older entries stay reusable
            options["regional"] = True
        entry = _graph_entry(name, src_dir / source, options)
        if is_reusable(graphs.get(name), entry, out_dir):
            say(f"{name}: unchanged, kept")
            continue
        # Forget the old entry first: a crash mid-export must not leave a manifest that
        # vouches for a half-replaced graph.
        graphs.pop(name, None)
        write_manifest(out_dir, _manifest(pipeline, graphs))
        say(f"{name}: exporting ({entry['dtype']})")
        if options.get("quantization") == "static-qdq":
            _export_calibrated_unet(src_dir, out_dir, out_dir / entry["path"], options, say)
        else:
            _export_graph(load_graph_module(src_dir, name, regional=regional),
                          example_inputs(name, pipeline, batch=2), out_dir / entry["path"],
                          name, options)
        _copy_config(src_dir / source, out_dir / name)
        graphs[name] = entry
    _copy_pipeline_files(src_dir, out_dir)
    manifest = _manifest(pipeline, graphs)
    write_manifest(out_dir, manifest)
    say("done")
    return manifest


def pipeline_settings(src_dir: Path, *, regional: bool = False) -> dict:
    """The numbers the engine needs besides the graphs, read from the source configs."""
    unet = read_json(src_dir / "unet" / "config.json")
    vae = read_json(src_dir / "vae" / "config.json")
    tokenizer = read_json(src_dir / "tokenizer" / "tokenizer_config.json")
    text = read_json(src_dir / "text_encoder" / "config.json")
    vae_factor = 2 ** (len(vae["block_out_channels"]) - 1)
    return {"class": read_json(src_dir / "model_index.json").get("_class_name"),
            "latent_channels": int(unet["in_channels"]),
            "sample_size": int(unet["sample_size"]),
            "vae_scale_factor": vae_factor,
            "image_size_multiple": vae_factor * 2 ** (len(unet["block_out_channels"]) - 1),
            "vae_scaling_factor": float(vae.get("scaling_factor", 0.18215)),
            "text_max_length": int(tokenizer.get("model_max_length", 77)),
            "text_hidden_size": int(text["hidden_size"]),
            "cross_attention_dim": int(unet["cross_attention_dim"]),
            "max_objects": MAX_GLIGEN_OBJECTS,
            # box-masked fusers (t2i_engines.pytorch.gligen_box_mask): the mask's token grid
            # is traced at sample_size, so the graph runs at that size only
            "box_mask": is_box_masked(src_dir / "unet"),
            # regional cross-attention: the context carries region channels
            "regional_prompts": regional}


def example_inputs(name: str, pipeline: dict, *, batch: int, height: int | None = None,
                   width: int | None = None, seed: int = 0) -> tuple:
    """Random inputs for graph ``name`` in its input order (fp32 / int64 torch tensors);
    ``height``/``width`` are latent sizes (default: the UNet's sample size)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    h = height or pipeline["sample_size"]
    w = width or pipeline["sample_size"]
    c, d = pipeline["latent_channels"], pipeline["cross_attention_dim"]
    if name == "text_encoder":
        return (torch.randint(0, 256, (batch, pipeline["text_max_length"]), generator=g),)
    if name == "vae_decoder":
        return (torch.randn(batch, c, h, w, generator=g),)
    n = pipeline["max_objects"]
    boxes = torch.rand(batch, n, 2, 2, generator=g).sort(dim=2).values  # x0 <= x1, y0 <= y1
    masks = (torch.rand(batch, n, generator=g) < 0.3).float()
    tokens = pipeline["text_max_length"]
    context = torch.randn(batch, tokens, d, generator=g)
    if pipeline.get("regional_prompts"):  # background + 2 phrase blocks, boxes as above
        context = torch.randn(batch, 3 * tokens, d, generator=g)
        region_boxes = boxes.transpose(2, 3).reshape(batch, n, 4)[0, :2].tolist()
        context = torch.from_numpy(pack_context(context.numpy(),
                                                region_channels(region_boxes, tokens)))
    return (torch.randn(batch, c, h, w, generator=g),
            torch.randint(1, 1000, (batch,), generator=g).float(), context,
            boxes.transpose(2, 3).reshape(batch, n, 4), torch.randn(batch, n, d, generator=g),
            masks, torch.ones(1))


def _check_source(src_dir: Path) -> None:
    for part in ("model_index.json", "tokenizer", "scheduler", "text_encoder", "unet", "vae"):
        if not (src_dir / part).exists():
            raise ValueError(f"{src_dir}: not a diffusers GLIGEN pipeline folder ({part} missing)")
    if read_json(src_dir / "unet" / "config.json").get("attention_type") != "gated":
        raise ValueError(f"{src_dir}: the UNet is not a GLIGEN (attention_type 'gated') UNet")


def _graph_entry(name: str, source: Path, options: dict) -> dict:
    from t2i_sdk.bundle.hashing import hash_tree

    inputs, outputs = GRAPH_IO[name]
    axes = dynamic_axes(name, regional=bool(options.get("regional")))
    return graph_entry(name, inputs, outputs, axes, hash_tree(source), options)


def _manifest(pipeline: dict, graphs: dict) -> dict:
    return {"format": "onnx", "version": MANIFEST_VERSION, "pipeline": pipeline,
            "graphs": {name: graphs[name] for name in GRAPH_IO if name in graphs}}


def _export_graph(module, args: tuple, final: Path, name: str, options: dict) -> None:
    """fp32 trace -> (optimise) -> (fp16 | int8); the last step writes ``final`` itself (an
    external data file keeps the name the graph refers to) and intermediates are removed."""
    inputs, outputs = GRAPH_IO[name]
    steps = conversion_steps(optimize=options["optimize"], fp16=options["fp16"],
                             int8=options["int8"], fp16_step=fp16_keeping_sinusoids)
    export_converted(module, args, final, steps, input_names=inputs, output_names=outputs,
                     dynamic_axes=dynamic_axes(name, regional=bool(options.get("regional"))),
                     opset=options["opset"])


def _export_calibrated_unet(src_dir: Path, out_dir: Path, final: Path, options: dict,
                            say: Callable[[str], None]) -> None:
    """Static int8 UNet: trace the fp32 UNet to a scratch folder, draft the calibration prompts
    with it (beside the text encoder and VAE decoder already exported to ``out_dir``, as they
    will run) recording every UNet call's inputs, then quantise the fp32 graph into ``final``
    with activation ranges calibrated on those inputs."""
    import tempfile

    from t2i_export.onnx.calibration import record_unet_feeds
    from t2i_export.onnx.graph import quantize_int8_static

    calibration = options["calibration"]
    fp32_options = {**options, "int8": False}
    regional = bool(options.get("regional"))
    with tempfile.TemporaryDirectory(prefix=".calibration-", dir=out_dir) as scratch:
        fp32 = Path(scratch) / "unet" / "model.onnx"
        say("unet: exporting the fp32 UNet to record calibration inputs")
        _export_graph(load_graph_module(src_dir, "unet", regional=regional),
                      example_inputs("unet", pipeline_settings(src_dir, regional=regional),
                                     batch=2), fp32, "unet", fp32_options)
        say(f"unet: recording UNet inputs on {len(calibration['prompts'])} calibration prompts")
        feeds = record_unet_feeds(out_dir, calibration["prompts"], steps=calibration["steps"],
                                  seed=calibration["seed"],
                                  engine_options=calibration["engine_options"],
                                  layout=calibration["layout"], unet=fp32)
        say(f"unet: static int8 quantisation calibrated on {len(feeds)} UNet calls")
        quantize_int8_static(fp32, final, feeds)


def fp16_keeping_sinusoids(src: Path, dst: Path) -> Path:
    """``graph.to_fp16``, except that sinusoidal embeddings (the UNet's timestep projection,
    GLIGEN's box Fourier features) and the ops feeding them stay float32: at t ~ 1000 fp16
    spacing is 0.5, which would shift sin/cos arguments by up to 0.25 rad (diffusers computes
    them in fp32 even in fp16 pipelines). A graph without Sin/Cos converts like ``to_fp16``."""
    import tempfile

    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".onnx-tmp-", dir=dst.parent) as scratch:
        inferred = Path(scratch) / "inferred.onnx"  # path-based: works past 2 GB
        onnx.shape_inference.infer_shapes_path(str(src), str(inferred))
        model = onnx.load(str(inferred))
    keep = sorted(sinusoid_nodes(model.graph))
    model = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True,
                                     node_block_list=keep or None)
    # The converter appends its Cast nodes at the end; with blocked nodes a Cast can then
    # follow its consumer, which onnx.checker rejects.
    OnnxModel(model).topological_sort()
    return save_model(model, dst)


# Ops between a graph input and a Sin/Cos in a sinusoidal embedding (scaling, reshaping).
_SINUSOID_FEEDERS = frozenset({"Sin", "Cos", "Mul", "Div", "Unsqueeze", "Expand", "Cast",
                               "Reshape", "Constant", "Exp"})


def sinusoid_nodes(graph, max_depth: int = 6) -> set[str]:
    """Names of every Sin/Cos node and of its feeding scale/reshape ops up to ``max_depth``
    producers back (stopping at graph inputs, initializers and any other op type)."""
    producer = {out: node for node in graph.node for out in node.output}
    keep: set[str] = set()
    frontier = [n for n in graph.node if n.op_type in ("Sin", "Cos")]
    for _ in range(max_depth + 1):
        next_frontier = []
        for node in frontier:
            if node.name in keep or node.op_type not in _SINUSOID_FEEDERS:
                continue
            keep.add(node.name)
            next_frontier += [producer[i] for i in node.input if i in producer]
        frontier = next_frontier
    return keep


def _copy_config(source: Path, dst_dir: Path) -> None:
    # The torch config beside the graph documents what was exported (not read by the engine).
    if (source / "config.json").is_file():
        shutil.copy2(source / "config.json", dst_dir / "config.json")


def _copy_pipeline_files(src_dir: Path, out_dir: Path) -> None:
    for name in COPIED:
        src, dst = src_dir / name, out_dir / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
