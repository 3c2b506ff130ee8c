"""What benchmarks/engines.py times: model folders, their exported graphs, and input feeds.

Tiny mode uses the tiny bundle. Real-size mode builds random-weight models with the real
architectures' sizes (SD 1.5 GLIGEN, CLIP ViT-L/14, SD-Turbo, a Qwen2-0.5B-size LLM;
real_size_models.py) and saves them to the work folder only because the exporters read folders;
latency does not depend on weight values. Nothing here keeps a model in memory: each case loads
its model when it is timed. ``read_for_merge`` / ``merge_results`` put one run's families into
an earlier run's results.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Callable

import numpy as np
import torch
from real_size_models import (SD_TURBO_UNET_PARAMS, TEXT_TOKENS, build_clip_vit_l14,
                              build_qwen2_05b, build_sd15_gligen, build_sd_turbo)

from t2i_engines.onnxruntime.export_format import MANIFEST_NAME

FAMILIES = ("drafter", "scorer", "refiner", "llm")
PROMPT = ("Rewrite this prompt for an image generator, keeping every object and its place: "
          "two red apples to the left of a blue cup on a wooden table, soft morning light")
Say = Callable[[str], None]


@dataclass
class Sources:
    """Native model folders (``save_pretrained`` layout); None: not benchmarked in this mode.
    ``notes``: family -> what model it is, or why it is skipped."""

    drafter: Path | None = None
    scorer: Path | None = None
    refiner: Path | None = None
    llm: Path | None = None
    notes: dict[str, str] = field(default_factory=dict)


@dataclass
class Component:
    """One timed graph: its torch reference module and its exported ONNX graphs.

    ``feeds(batch)``: numpy inputs by graph input name. ``load_torch()``: a module taking the
    inputs as tensors in ``input_names`` order. ``graphs``: {engine: ONNX path}. A batch runs
    ``rows_per_item * batch`` rows (2 for classifier-free guidance).
    """

    name: str
    description: str
    input_names: list[str]
    feeds: Callable[[int], dict[str, np.ndarray]]
    load_torch: Callable[[], torch.nn.Module]
    graphs: dict[str, Path]
    torch_bytes: int
    rows_per_item: int = 1
    resolution: int = 0  # image pixels per side for spatial graphs (TensorRT profile)
    vae_scale: int = 8


# --- sources ----------------------------------------------------------------------------------

def tiny_sources(work: Path, say: Say) -> Sources:
    """Build the tiny bundle into ``work/bundle``; its components are the sources."""
    from t2i_sdk.bundle.tiny import build_tiny_bundle

    bundle = work / "bundle"
    build_tiny_bundle(bundle, overwrite=True, progress=lambda role: say(f"tiny bundle: {role}"))
    paths = {role: bundle / entry["path"] for role, entry in
             json.loads((bundle / "bundle.json").read_text())["components"].items()}
    return Sources(drafter=paths["drafter"], scorer=paths["scorer"], refiner=paths["refiner"],
                   llm=paths["rewriter"], notes={
                       "drafter": "tiny GLIGEN (t2i_engines.pytorch.tiny)",
                       "scorer": "tiny CLIP", "refiner": "tiny SDXL-Turbo-style img2img",
                       "llm": "tiny Llama (rewriter)"})


def real_size_sources(work: Path, families: tuple[str, ...], say: Say) -> Sources:
    """Random-weight real-size models for the selected families, saved under ``work``; a
    folder left complete by an earlier run with the same ``work`` is reused (builds are seeded,
    so it holds the same weights)."""
    sources = Sources(notes={
        "drafter": "SD 1.5-size GLIGEN: UNet (320, 640, 1280, 1280) gated, CLIP-L text encoder "
                   "(768 x 12), VAE (128, 256, 512, 512); random weights",
        "scorer": "CLIP ViT-L/14 size (vision 1024 x 24, patch 14, 224 px; text 768 x 12, "
                  "projection 768); random weights",
        "refiner": f"SD-Turbo size (SD 2.1 UNet {SD_TURBO_UNET_PARAMS / 1e6:.1f} M, OpenCLIP-H "
                   "text encoder 1024 x 23, SD VAE); random weights. SDXL-Turbo's 2.6 B UNet is "
                   "not run: its fp32 ONNX export needs more than this machine's 24 GiB",
        "llm": "Qwen2-0.5B size (hidden 896, 24 layers, 14 heads / 2 KV heads, FFN 4864, "
               "vocab 151936, tied embeddings; tokenizer: the tiny one, padded); random weights"})
    builders = {"drafter": build_sd15_gligen, "scorer": build_clip_vit_l14,
                "refiner": build_sd_turbo, "llm": build_qwen2_05b}
    for family, build in builders.items():
        if family not in families:
            continue
        folder = work / f"src-{family}"
        if not folder.is_dir():
            say(f"building real-size {family}")
            partial = work / f".src-{family}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            os.replace(build(partial), folder)  # complete folders only
        setattr(sources, family, folder)
    return sources


# --- exports ----------------------------------------------------------------------------------

def export_drafter(src: Path, work: Path, say: Say, resolution: int = 256) -> tuple[Path, Path]:
    """(fp32 folder, int8 folder). The int8 folder holds the dynamic-int8 text encoder and the
    static QDQ int8 UNet and VAE decoder (``quantize_int8_static``), calibrated here on
    ``CALIBRATION_FEEDS`` random feeds at ``resolution``: these models have random weights, so
    there is no real pipeline run to record, and latency does not depend on the ranges. The
    int8 folder starts as hard links to the fp32 one, so the exporter keeps the fp32 UNet/VAE
    and re-exports only the text encoder (it unlinks before writing, so the fp32 files are
    untouched); the UNet/VAE graphs are then replaced by their quantised versions."""
    from t2i_export.onnx.gligen_export import GRAPH_IO, example_inputs, export_gligen, \
        pipeline_settings
    from t2i_export.onnx.graph import quantize_int8_static

    fp32, int8 = work / "onnx-drafter-fp32", work / "onnx-drafter-int8"
    export_gligen(src, fp32, progress=lambda m: say(f"drafter fp32: {m}"))
    marker = int8 / f".static-int8-{resolution}"
    if marker.is_file():
        return fp32, int8  # an earlier run with this work folder quantised these graphs
    shutil.rmtree(int8, ignore_errors=True)  # links only to this run's fp32 files
    shutil.copytree(fp32, int8, copy_function=os.link, dirs_exist_ok=True)
    export_gligen(src, int8, int8_text_encoder=True, progress=lambda m: say(f"drafter int8: {m}"))
    pipe = pipeline_settings(src)
    side = resolution // pipe["vae_scale_factor"]
    for graph, rows in (("unet", 2), ("vae_decoder", 1)):
        say(f"drafter int8: calibrating and quantising {graph}")
        feeds = [dict(zip(GRAPH_IO[graph][0], (t.numpy() for t in example_inputs(
            graph, pipe, batch=rows, height=side, width=side, seed=100 + i))))
            for i in range(CALIBRATION_FEEDS)]
        target = int8 / graph / "model.onnx"
        target.unlink()  # a hard link to the fp32 graph: never write through it
        quantize_int8_static(fp32 / graph / "model.onnx", target, feeds)
    marker.write_text("")
    return fp32, int8


CALIBRATION_FEEDS = 4


def export_scorer(src: Path, work: Path, say: Say) -> tuple[Path, Path]:
    from t2i_export.onnx.clip_export import export_clip

    fp32, int8 = work / "onnx-scorer-fp32", work / "onnx-scorer-int8"
    export_clip(src, fp32, progress=lambda m: say(f"scorer fp32: {m}"))
    export_clip(src, int8, int8=True, progress=lambda m: say(f"scorer int8: {m}"))
    return fp32, int8


def export_refiner(src: Path, work: Path, say: Say) -> Path:
    from t2i_export.onnx.img2img_export import export_img2img

    out = work / "onnx-refiner-fp32"
    export_img2img(src, out, progress=say)
    return out


# --- components -------------------------------------------------------------------------------

def drafter_components(src: Path, fp32: Path, int8: Path, resolution: int) -> list[Component]:
    """Text encoder, one CFG denoising step of the GLIGEN UNet, VAE decoder."""
    from t2i_export.onnx.gligen_export import (GRAPH_IO, example_inputs, load_graph_module,
                                               pipeline_settings)

    pipe = pipeline_settings(src)
    if resolution % pipe["image_size_multiple"]:
        raise ValueError(f"--resolution {resolution} is not a multiple of "
                         f"{pipe['image_size_multiple']} (the GLIGEN graph's requirement)")
    side = resolution // pipe["vae_scale_factor"]

    def feeds(graph: str, rows: int) -> Callable[[int], dict[str, np.ndarray]]:
        return lambda batch: dict(zip(GRAPH_IO[graph][0], (t.numpy() for t in example_inputs(
            graph, pipe, batch=rows * batch, height=side, width=side))))

    def component(graph, source, description, rows=1, int8_graph=True):
        graphs = {"ort-fp32": fp32 / graph / "model.onnx"}
        if int8_graph:
            graphs["ort-int8"] = int8 / graph / "model.onnx"
        return Component(f"drafter.{graph}", description, GRAPH_IO[graph][0], feeds(graph, rows),
                         lambda: load_graph_module(src, graph), graphs,
                         folder_bytes(src / source), rows, resolution,
                         pipe["vae_scale_factor"])

    return [
        component("text_encoder", "text_encoder", f"CLIP text encoder, {TEXT_TOKENS} tokens"),
        component("unet", "unet",
                  f"GLIGEN UNet, 1 step, CFG (2 rows/item), latents {side}x{side}", rows=2),
        component("vae_decoder", "vae",
                  f"VAE decoder, {side}x{side} -> {resolution}x{resolution}"),
    ]


class _ClipTower(torch.nn.Module):
    """One CLIP tower's projected features, as the exported graph computes them."""

    def __init__(self, clip, tower: str):
        super().__init__()
        self.clip, self.tower = clip, tower

    def forward(self, *inputs):
        if self.tower == "text":
            out = self.clip.get_text_features(input_ids=inputs[0], attention_mask=inputs[1])
        else:
            out = self.clip.get_image_features(pixel_values=inputs[0])
        # transformers 4 returns the tensor, transformers 5 a model output holding it
        return out if hasattr(out, "shape") else out.pooler_output


def scorer_components(src: Path, fp32: Path, int8: Path) -> list[Component]:
    """CLIP text tower (77 tokens) and vision tower, as the ranker runs them."""
    from t2i_export.onnx.clip_export import GRAPH_IO, model_settings

    config = json.loads((src / "config.json").read_text())["text_config"]
    size = model_settings(src)["image_size"]

    def text_feeds(batch):
        rng = np.random.default_rng(batch)
        ids = rng.integers(0, config["vocab_size"], (batch, TEXT_TOKENS), dtype=np.int64)
        ids[:, -1] = config.get("eos_token_id", 2)
        return {"input_ids": ids, "attention_mask": np.ones_like(ids)}

    def vision_feeds(batch):
        rng = np.random.default_rng(batch)
        return {"pixel_values": rng.standard_normal((batch, 3, size, size), dtype=np.float32)}

    def load(tower):
        from transformers import CLIPModel

        return lambda: _ClipTower(CLIPModel.from_pretrained(
            src, dtype=torch.float32, use_safetensors=True).eval(), tower)

    return [Component(f"scorer.{tower}_model", description, GRAPH_IO[f"{tower}_model"][0], feeds,
                      load(tower), {e: root / f"{tower}_model" / "model.onnx"
                                    for e, root in (("ort-fp32", fp32), ("ort-int8", int8))},
                      folder_bytes(src), resolution=size)
            for tower, description, feeds in (
                ("text", f"CLIP text tower, {TEXT_TOKENS} tokens", text_feeds),
                ("vision", f"CLIP vision tower, {size}x{size} px", vision_feeds))]


def refiner_component(src: Path, onnx_dir: Path, resolution: int) -> Component:
    """One img2img UNet step (guidance 0, as SD-Turbo and SDXL-Turbo run: no CFG rows) at
    ``resolution`` px, the drafter's."""
    from diffusers import UNet2DConditionModel
    from t2i_export.onnx.img2img_export import SDUNet, XLUNet, read_config

    config = read_config(src)
    unet = json.loads((src / "unet" / "config.json").read_text())
    names = json.loads((onnx_dir / MANIFEST_NAME).read_text())["graphs"]["unet"]["inputs"]
    side = resolution // config.vae_scale_factor
    pooled = 0
    if config.pipeline == "sdxl":
        pooled = json.loads((src / "text_encoder_2" / "config.json").read_text())["projection_dim"]
    n_time_ids = ((unet.get("projection_class_embeddings_input_dim") or 0) - pooled) \
        // (unet.get("addition_time_embed_dim") or 1)

    def feeds(batch):
        rng = np.random.default_rng(batch)
        values = {"sample": rng.standard_normal((batch, config.latent_channels, side, side)),
                  "timestep": np.full((batch,), 499.0),
                  "encoder_hidden_states": rng.standard_normal(
                      (batch, TEXT_TOKENS, unet["cross_attention_dim"])),
                  "text_embeds": rng.standard_normal((batch, pooled)),
                  "time_ids": np.tile([resolution, resolution, 0, 0, resolution, resolution],
                                      (batch, 1))[:, :n_time_ids]}
        return {n: values[n].astype(np.float32) for n in names}

    def load():
        wrapper = XLUNet if config.pipeline == "sdxl" else SDUNet
        return wrapper(UNet2DConditionModel.from_pretrained(src / "unet",
                                                            dtype=torch.float32)).eval()

    return Component("refiner.unet", f"img2img UNet ({config.pipeline}), 1 step, no CFG, "
                     f"latents {side}x{side}", names, feeds, load,
                     {"ort-fp32": onnx_dir / "unet" / "model.onnx"},
                     folder_bytes(src / "unet"), 1, resolution, config.vae_scale_factor)


def folder_bytes(folder: Path) -> int:
    """Bytes of the safetensors weights under ``folder``."""
    total = sum(p.stat().st_size for p in Path(folder).rglob("*.safetensors"))
    if not total:
        raise ValueError(f"no safetensors weights under {folder}")
    return total


# --- LLM ----------------------------------------------------------------------------------------

def prompt_ids(src: Path, n_tokens: int) -> list[int]:
    """``n_tokens`` ids of a rewriting prompt (BOS first), from the model's own tokenizer; both
    runtimes get the same ids."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(src)
    ids = tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    while len(ids) < n_tokens - 1:
        ids = ids + ids
    return [tokenizer.bos_token_id, *ids[: n_tokens - 1]]


def transformers_decoder(src: Path) -> Callable[[list[int], int], tuple[float, float]]:
    """Greedy decoding with a KV cache, fp32 on CPU: ``run(prompt, n_new) -> (prefill s,
    total s)``; end-of-sequence tokens do not stop it, so every run makes ``n_new`` tokens."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()

    def run(prompt: list[int], n_new: int) -> tuple[float, float]:
        with torch.inference_mode():
            start = perf_counter()
            out = model(input_ids=torch.tensor([prompt]), use_cache=True)
            token = out.logits[:, -1:].argmax(-1)
            prefill = perf_counter() - start
            for _ in range(n_new - 1):
                out = model(input_ids=token, past_key_values=out.past_key_values, use_cache=True)
                token = out.logits[:, -1:].argmax(-1)
            return prefill, perf_counter() - start

    return run


def llamacpp_decoder(gguf: Path, threads: int) -> Callable[[list[int], int], tuple[float, float]]:
    """The same greedy loop through ``LlamaCppEngine``'s llama.cpp model on CPU, with
    ``threads`` for both prompt and token evaluation (llama-cpp-python's own default is
    ``cpu_count // 2`` for tokens)."""
    import llama_cpp
    from t2i_engines.llamacpp.causal_lm import LlamaCppEngine, llama_vocab
    from t2i_engines.llamacpp.sampling import SamplerChain

    engine = LlamaCppEngine.load(gguf, device="cpu")
    llm = engine.llm
    llama_cpp.llama_set_n_threads(llm.ctx, threads, threads)

    def run(prompt: list[int], n_new: int) -> tuple[float, float]:
        llm.reset()
        with SamplerChain(llama_vocab(llm), None, None) as greedy:
            start = perf_counter()
            llm.eval(prompt)
            token = greedy.sample(llm.ctx)
            prefill = perf_counter() - start
            for _ in range(n_new - 1):
                llm.eval([token])
                token = greedy.sample(llm.ctx)
            return prefill, perf_counter() - start

    run.engine = engine  # keeps the model alive as long as the runner
    return run


# --- merging one run's families into an earlier run's results ----------------------------------

# Settings that change what a figure means: a merged run must share them with the earlier one.
MERGE_SETTINGS = ("real_size", "batches", "resolution", "warmup", "iterations", "threads")
LLM_SETTINGS = ("prompt_tokens", "new_tokens")


def read_for_merge(path: Path, settings: dict) -> dict:
    """The earlier result at ``path``, if it was timed with this run's ``settings`` (as
    recorded in the JSON); else SystemExit, before any model is built."""
    if not path.is_file():
        raise SystemExit(f"--merge: no earlier result at {path}")
    earlier = json.loads(path.read_text())
    settings = json.loads(json.dumps(settings))  # tuples -> lists, as the JSON holds them
    keys = MERGE_SETTINGS + (LLM_SETTINGS if "llm" in settings["families"] else ())
    differ = [f"{k}: {earlier['settings'].get(k)} there, {settings[k]} here" for k in keys
              if earlier["settings"].get(k) != settings[k]]
    if differ:
        raise SystemExit(f"--merge: {path} was timed with other settings ({'; '.join(differ)})")
    return earlier


def merge_results(earlier: dict, new: dict) -> dict:
    """``earlier`` with the families ``new`` ran replaced by ``new``'s rows and model notes
    (components stay in family order); ``merges`` lists each merged run's families, date,
    machine and versions (the top-level ones stay the earlier run's)."""
    families = list(new["settings"]["families"])

    def family(row: dict) -> str:
        return row["component"].split(".", 1)[0]

    rows = [r for r in earlier["components"] if family(r) not in families] + new["components"]
    notes = {**earlier["models"], **new["models"]}
    ran = set(earlier["settings"]["families"]) | set(families)
    return {**earlier,
            "settings": {**earlier["settings"], "families": [f for f in FAMILIES if f in ran]},
            "models": {f: notes[f] for f in FAMILIES if f in notes},
            "components": sorted(rows, key=lambda r: FAMILIES.index(family(r))),
            "llm": new["llm"] if "llm" in families else earlier["llm"],
            "merges": [*earlier.get("merges", []),
                       {"families": families, "created": new["created"],
                        "machine": new["machine"], "versions": new["versions"]}]}
