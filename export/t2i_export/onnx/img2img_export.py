"""Export an img2img refiner pipeline folder (SDXL / SDXL-Turbo, or plain SD) to ONNX graphs.

Output layout (``out_dir``)::

    text_encoder/model.onnx    input_ids [B, S] int64 -> hidden_states [B, S, D1]
    text_encoder_2/model.onnx  input_ids -> hidden_states [B, S, D2], text_embeds [B, P]  (SDXL)
    unet/model.onnx            sample, timestep [B], encoder_hidden_states
                               (+ text_embeds, time_ids for SDXL) -> out_sample
    vae_encoder/model.onnx     image [B, 3, H, W] in [-1, 1] -> latent_mean, latent_std
    vae_decoder/model.onnx     latent [B, C, h, w] (unscaled) -> image [B, 3, H, W]
    tokenizer/ tokenizer_2/ scheduler/ model_index.json   copied from the source
    onnx_export.json           what the graphs are (see ``export_img2img``)

Batch, text length and spatial axes are dynamic. The torch wrappers give each sub-model a plain
tensor signature; scaling by the VAE factor, noise and the scheduler stay outside the graphs
(the onnxruntime engine does them with the same generators diffusers uses).
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from t2i_export.onnx.export_manifest import (MANIFEST_NAME, folder_sha256, read_json,
                                             read_manifest, write_manifest)
from t2i_export.onnx.graph import (DEFAULT_OPSET, export_onnx, model_files, optimize_graph,
                                   quantize_int8, to_fp16)

EXPORT_JSON = MANIFEST_NAME
FORMAT_VERSION = 1
COPIED_FOLDERS = ("tokenizer", "tokenizer_2", "scheduler")
TEXT_GRAPHS = ("text_encoder", "text_encoder_2")
# A tiny trace size: every spatial axis is dynamic, so it only has to be valid for the models.
TRACE_BATCH = 2


# --- torch wrappers: tensors in, tensors out -------------------------------------------------

class PenultimateTextEncoder(torch.nn.Module):
    """``input_ids -> hidden_states[-2]``: SDXL feeds the UNet the penultimate layer, before
    the final layer norm."""

    def __init__(self, text_encoder):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        return self.text_encoder(input_ids, output_hidden_states=True).hidden_states[-2]


class LastLayerTextEncoder(torch.nn.Module):
    """``input_ids -> last_hidden_state``: plain SD uses the final, layer-normed output."""

    def __init__(self, text_encoder):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        return self.text_encoder(input_ids).last_hidden_state


class ProjectedTextEncoder(torch.nn.Module):
    """``input_ids -> (hidden_states[-2], text_embeds)``: SDXL's second encoder also gives the
    projected pooled (EOS-token) embedding."""

    def __init__(self, text_encoder):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        out = self.text_encoder(input_ids, output_hidden_states=True)
        return out.hidden_states[-2], out.text_embeds


class XLUNet(torch.nn.Module):
    """``(sample, timestep [B], encoder_hidden_states, text_embeds, time_ids) -> noise``."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        added = {"text_embeds": text_embeds, "time_ids": time_ids}
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                         added_cond_kwargs=added, return_dict=False)[0]


class SDUNet(torch.nn.Module):
    """``(sample, timestep [B], encoder_hidden_states) -> noise``: a plain SD UNet."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                         return_dict=False)[0]


class VaeEncoder(torch.nn.Module):
    """``image -> (mean, std)`` of the unscaled posterior, as ``DiagonalGaussianDistribution``
    computes them (logvar clamped to [-30, 20]). The caller draws ``mean + std * noise`` with its
    own generator: the same noise diffusers' ``latent_dist.sample(generator)`` draws."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, image):
        dist = self.vae.encode(image).latent_dist
        return dist.mean, dist.std


class VaeDecoder(torch.nn.Module):
    """``latent`` (already divided by the scaling factor) ``-> image`` in about [-1, 1]."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent):
        return self.vae.decode(latent, return_dict=False)[0]


# --- what to export ---------------------------------------------------------------------------

@dataclass
class GraphSpec:
    """One graph: the wrapped module, example inputs to trace, and its IO names/axes."""

    module: torch.nn.Module
    args: tuple
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict


@dataclass(frozen=True)
class RefinerConfig:
    """The numbers outside the graphs that the engine needs to reproduce the pipeline."""

    pipeline: str  # "sdxl" | "sd"
    vae_scale_factor: int  # image pixels per latent pixel, per side
    latent_channels: int
    scaling_factor: float
    latents_mean: list[float] | None
    latents_std: list[float] | None
    force_upcast: bool  # diffusers decodes this VAE in fp32 even in fp16 pipelines
    requires_aesthetics_score: bool  # SDXL refiner: time ids end in a score, not a size
    force_zeros_for_empty_prompt: bool  # CFG's negative embeddings are zeros, not encoded ""


def read_config(src: Path) -> RefinerConfig:
    """Read the pipeline's numbers from its JSON configs (no weights are loaded)."""
    index = read_json(src / "model_index.json")
    vae = read_json(src / "vae" / "config.json")
    return RefinerConfig(
        pipeline="sdxl" if (src / "text_encoder_2").is_dir() else "sd",
        vae_scale_factor=2 ** (len(vae["block_out_channels"]) - 1),
        latent_channels=int(vae.get("latent_channels", 4)),
        scaling_factor=float(vae.get("scaling_factor", 0.18215)),
        latents_mean=vae.get("latents_mean"), latents_std=vae.get("latents_std"),
        force_upcast=bool(vae.get("force_upcast", True)),
        requires_aesthetics_score=bool(index.get("requires_aesthetics_score", False)),
        force_zeros_for_empty_prompt=bool(index.get("force_zeros_for_empty_prompt", True)))


def _axes(*names: str, spatial: bool = False, text: bool = False) -> dict:
    axes = {0: "batch"}
    if spatial:
        axes.update({2: "height", 3: "width"})
    if text:
        axes[1] = "sequence"
    return {name: dict(axes) for name in names}


def _trace_ids(src: Path, config) -> torch.Tensor:
    tokenizer = read_json(src / "tokenizer" / "tokenizer_config.json")
    length = int(tokenizer.get("model_max_length", 77))
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (TRACE_BATCH, length), generator=generator)
    ids[:, -1] = config.eos_token_id  # the pooled output reads the EOS position
    return ids


def _text_encoder_spec(src: Path, config: RefinerConfig) -> GraphSpec:
    from transformers import CLIPTextModel

    encoder = CLIPTextModel.from_pretrained(src / "text_encoder", dtype=torch.float32).eval()
    wrapper = PenultimateTextEncoder if config.pipeline == "sdxl" else LastLayerTextEncoder
    return GraphSpec(wrapper(encoder), (_trace_ids(src, encoder.config),), ["input_ids"],
                     ["hidden_states"], _axes("input_ids", "hidden_states", text=True))


def _text_encoder_2_spec(src: Path, config: RefinerConfig) -> GraphSpec:
    from transformers import CLIPTextModelWithProjection

    encoder = CLIPTextModelWithProjection.from_pretrained(
        src / "text_encoder_2", dtype=torch.float32).eval()
    return GraphSpec(ProjectedTextEncoder(encoder), (_trace_ids(src, encoder.config),),
                     ["input_ids"], ["hidden_states", "text_embeds"],
                     {**_axes("input_ids", "hidden_states", text=True), **_axes("text_embeds")})


def _unet_spec(src: Path, config: RefinerConfig) -> GraphSpec:
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(src / "unet", dtype=torch.float32).eval()
    cfg = unet.config
    if cfg.time_cond_proj_dim is not None:
        raise ValueError("UNets with a guidance embedding (time_cond_proj_dim) are not supported")
    # An odd side makes diffusers pass explicit up-sampling sizes (taken from the skip tensors)
    # instead of a fixed factor 2, so the graph also runs latents not divisible by 2**depth.
    side = 4 * 2 ** len(cfg.block_out_channels) + 1
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(TRACE_BATCH, cfg.in_channels, side, side, generator=generator)
    timestep = torch.tensor([999.0, 499.0])[:TRACE_BATCH]
    hidden = torch.randn(TRACE_BATCH, 77, cfg.cross_attention_dim, generator=generator)
    names = ["sample", "timestep", "encoder_hidden_states"]
    axes = {**_axes("sample", "out_sample", spatial=True), **_axes("timestep"),
            **_axes("encoder_hidden_states", text=True)}
    if config.pipeline == "sd":
        return GraphSpec(SDUNet(unet), (sample, timestep, hidden), names, ["out_sample"], axes)
    pooled_dim = int(read_json(src / "text_encoder_2" / "config.json")["projection_dim"])
    n_time_ids = (cfg.projection_class_embeddings_input_dim - pooled_dim) \
        // cfg.addition_time_embed_dim
    pixels = float(config.vae_scale_factor * side)
    time_ids = torch.tensor([[pixels, pixels, 0.0, 0.0, pixels, pixels][:n_time_ids]]
                            * TRACE_BATCH)
    text_embeds = torch.randn(TRACE_BATCH, pooled_dim, generator=generator)
    return GraphSpec(XLUNet(unet), (sample, timestep, hidden, text_embeds, time_ids),
                     names + ["text_embeds", "time_ids"], ["out_sample"],
                     {**axes, **_axes("text_embeds", "time_ids")})


def _load_vae(src: Path):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(src / "vae", dtype=torch.float32).eval()


def _vae_encoder_spec(src: Path, config: RefinerConfig) -> GraphSpec:
    side = 8 * config.vae_scale_factor
    image = torch.rand(TRACE_BATCH, 3, side, side, generator=torch.Generator().manual_seed(2))
    return GraphSpec(VaeEncoder(_load_vae(src)), (image * 2 - 1,), ["image"],
                     ["latent_mean", "latent_std"],
                     _axes("image", "latent_mean", "latent_std", spatial=True))


def _vae_decoder_spec(src: Path, config: RefinerConfig) -> GraphSpec:
    latent = torch.randn(TRACE_BATCH, config.latent_channels, 8, 8,
                         generator=torch.Generator().manual_seed(3))
    return GraphSpec(VaeDecoder(_load_vae(src)), (latent,), ["latent"], ["image"],
                     _axes("latent", "image", spatial=True))


# graph name -> (source weights folder, spec builder); built lazily, one model in memory at a time
GRAPHS = {
    "text_encoder": ("text_encoder", _text_encoder_spec),
    "text_encoder_2": ("text_encoder_2", _text_encoder_2_spec),
    "unet": ("unet", _unet_spec),
    "vae_encoder": ("vae", _vae_encoder_spec),
    "vae_decoder": ("vae", _vae_decoder_spec),
}


def _graph_dtype(name: str, config: RefinerConfig, fp16: bool, int8_text_encoder: bool) -> str:
    if name in TEXT_GRAPHS and int8_text_encoder:
        return "int8"
    if name.startswith("vae_") and config.force_upcast:
        return "fp32"  # this VAE overflows in fp16; diffusers upcasts it, so we keep it fp32
    return "fp16" if fp16 else "fp32"


# --- export -----------------------------------------------------------------------------------

def export_img2img(src_dir: Path, out_dir: Path, *, fp16: bool = False,
                   int8_text_encoder: bool = False, optimize: bool = True,
                   progress=None) -> dict:
    """Export the img2img pipeline folder ``src_dir`` (saved SDXL or SD pipeline) into
    ``out_dir`` and return what ``onnx_export.json`` now says.

    ``fp16``: fp16 weights/activations with fp32 inputs/outputs (a ``force_upcast`` VAE stays
    fp32, as in diffusers). ``int8_text_encoder``: dynamic int8 text encoders. ``optimize``:
    onnxruntime's offline basic optimisation. ``progress(message)`` is called before each graph.
    A graph already in ``out_dir`` from the same source weights and options is kept.
    """
    src, out = Path(src_dir), Path(out_dir)
    config = read_config(src)
    names = [n for n in GRAPHS if n != "text_encoder_2" or config.pipeline == "sdxl"]
    out.mkdir(parents=True, exist_ok=True)
    previous = _previous_graphs(out)
    graphs = {}
    for name in names:
        source, build = GRAPHS[name]
        entry = {"path": f"{name}/model.onnx", "source": source,
                 "source_sha256": folder_sha256(src / source),
                 "dtype": _graph_dtype(name, config, fp16, int8_text_encoder),
                 "opset": DEFAULT_OPSET, "optimized": optimize}
        old = previous.get(name, {})
        if {k: old.get(k) for k in entry} == entry and (out / entry["path"]).is_file():
            graphs[name] = old
            continue
        if progress is not None:
            progress(f"img2img: exporting {name}")
        spec = build(src, config)
        _export_graph(spec, out / entry["path"], entry["dtype"], optimize)
        graphs[name] = {**entry, "inputs": spec.input_names, "outputs": spec.output_names,
                        "files": [p.relative_to(out).as_posix()
                                  for p in model_files(out / entry["path"])]}
        del spec  # free the torch weights before the next model loads
    _copy_configs(src, out)
    manifest = {"format_version": FORMAT_VERSION, "kind": "img2img",
                "config": asdict(config), "graphs": graphs,
                "options": {"fp16": fp16, "int8_text_encoder": int8_text_encoder,
                            "optimize": optimize, "opset": DEFAULT_OPSET}}
    write_manifest(out, manifest)
    return manifest


def _export_graph(spec: GraphSpec, dst: Path, dtype: str, optimize: bool) -> None:
    """fp32 trace -> (basic optimisation) -> fp16 / int8, each step in a scratch folder; the
    last step writes ``dst`` itself so an external data file keeps the name it refers to."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".img2img-", dir=dst.parent.parent) as scratch:
        steps = [optimize_graph] if optimize else []
        steps += {"fp16": [to_fp16], "int8": [quantize_int8], "fp32": []}[dtype]
        first = dst if not steps else Path(scratch) / "traced" / "model.onnx"
        current = export_onnx(spec.module, spec.args, first, input_names=spec.input_names,
                              output_names=spec.output_names, dynamic_axes=spec.dynamic_axes,
                              opset=DEFAULT_OPSET)
        for i, step in enumerate(steps):
            last = i == len(steps) - 1
            current = step(current, dst if last else Path(scratch) / f"step{i}" / "model.onnx")


def _previous_graphs(out: Path) -> dict:
    return (read_manifest(out) or {}).get("graphs", {})


def _copy_configs(src: Path, out: Path) -> None:
    for folder in COPIED_FOLDERS:
        if (src / folder).is_dir():
            shutil.copytree(src / folder, out / folder, dirs_exist_ok=True)
    shutil.copy2(src / "model_index.json", out / "model_index.json")
