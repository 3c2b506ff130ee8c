"""Export a transformers ``CLIPModel`` folder (the ranker's scorer) to two ONNX graphs.

Output folder::

    text_model/model.onnx    input_ids int64 [B, T], attention_mask int64 [B, T]
                             -> text_embeds float32 [B, D]  (projected, NOT L2-normalised)
    vision_model/model.onnx  pixel_values float32 [B, 3, S, S] (the image processor's output)
                             -> image_embeds float32 [B, D] (projected, NOT L2-normalised)
    config.json, tokenizer + image processor files   copied from the source
    onnx_export.json         what the graphs are (see ``export_clip``)

B and T are dynamic (the torch engine pads each batch to its longest text, T <=
``max_position_embeddings``); S is the checkpoint's fixed image size. The graphs compute
exactly ``get_text_features`` / ``get_image_features``; normalisation stays in the engine, in
float32, as in the torch engine.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

# MANIFEST_NAME, read_manifest and write_manifest stay importable from here.
from t2i_export.onnx.export_manifest import (MANIFEST_NAME, files_sha256,  # noqa: F401
                                             graph_entry, is_reusable, read_json, read_manifest,
                                             write_manifest)
from t2i_export.onnx.graph import DEFAULT_OPSET, conversion_steps, export_converted

MANIFEST_VERSION = 1
# Everything the tokenizer and image processor may be saved as; config.json lets the Auto*
# classes resolve the same concrete classes the torch engine gets from the source folder.
COPIED_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json",
                "merges.txt", "special_tokens_map.json", "added_tokens.json",
                "preprocessor_config.json", "processor_config.json")
WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "config.json")
# Names and dynamic axes of each graph: the contract with OrtClipScorerEngine.
GRAPH_IO = {
    "text_model": (["input_ids", "attention_mask"], ["text_embeds"]),
    "vision_model": (["pixel_values"], ["image_embeds"]),
}
DYNAMIC_AXES = {
    "text_model": {"input_ids": {0: "batch", 1: "tokens"},
                   "attention_mask": {0: "batch", 1: "tokens"}, "text_embeds": {0: "batch"}},
    "vision_model": {"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
}


def export_clip(src_dir: Path, out_dir: Path, *, fp16: bool = False, int8: bool = False,
                optimize: bool = True, progress: Callable[[str], None] | None = None) -> dict:
    """Export the ``CLIPModel`` at ``src_dir`` into ``out_dir``; returns the manifest dict also
    written (atomically) to ``out_dir/onnx_export.json``.

    ``fp16``: float16 weights and activations (inputs/outputs stay float32).
    ``int8``: dynamic int8 weights for both towers (opt-in, for CPU; wins over ``fp16``).
    ``optimize``: onnxruntime's provider-independent offline optimisation before conversion.
    ``progress``: called with one line per step. A graph whose source weights and options match
    the existing manifest, and whose file exists, is kept rather than re-exported.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    say = progress or (lambda message: None)
    if not (src_dir / "config.json").is_file():
        raise ValueError(f"{src_dir}: not a CLIP checkpoint folder (config.json missing)")
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(out_dir)
    options = {"fp16": fp16 and not int8, "int8": int8, "optimize": optimize,
               "opset": DEFAULT_OPSET}
    source = source_sha256(src_dir)
    model = tokenizer = None
    graphs = {}
    for name in GRAPH_IO:
        inputs, outputs = GRAPH_IO[name]
        entry = graph_entry(name, inputs, outputs, DYNAMIC_AXES[name], source, options)
        if is_reusable((previous or {}).get("graphs", {}).get(name), entry, out_dir):
            say(f"{name}: unchanged, kept")
            graphs[name] = previous["graphs"][name]
            continue
        if model is None:
            say("loading torch weights")
            model, tokenizer = _load_source(src_dir)
        say(f"{name}: exporting ({entry['dtype']})")
        module, args = _graph_module(name, model, tokenizer)
        _export_graph(module, args, out_dir / entry["path"], name, options)
        graphs[name] = entry
    _copy_processing_files(src_dir, out_dir)
    manifest = {"format": "onnx", "version": MANIFEST_VERSION, "kind": "clip",
                "model": model_settings(src_dir), "graphs": graphs}
    write_manifest(out_dir, manifest)
    say("done")
    return manifest


def model_settings(src_dir: Path) -> dict:
    """The numbers the engine needs besides the graphs, read from the source config."""
    config = read_json(Path(src_dir) / "config.json")
    text, vision = config.get("text_config", {}), config.get("vision_config", {})
    return {"projection_dim": int(config.get("projection_dim", 512)),
            "max_position_embeddings": int(text.get("max_position_embeddings", 77)),
            "image_size": int(vision.get("image_size", 224))}


def source_sha256(src_dir: Path) -> dict[str, str]:
    """``{file name: sha256}`` of the torch weights and config that the graphs are built from."""
    return files_sha256(src_dir, WEIGHT_PATTERNS)


def _load_source(src_dir: Path):
    """The fp32 CLIPModel and its tokenizer (for realistic example inputs)."""
    from transformers import AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(src_dir, dtype="float32", local_files_only=True,
                                      use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(src_dir, local_files_only=True)
    return model.eval(), tokenizer


def _graph_module(name: str, model, tokenizer) -> tuple:
    """(wrapper module, example args) for graph ``name``; batch 2 so no axis is traced as 1."""
    import torch

    class TextEmbeds(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip = clip

        def forward(self, input_ids, attention_mask):
            out = self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            return _pooled(out)

    class ImageEmbeds(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip = clip

        def forward(self, pixel_values):
            return _pooled(self.clip.get_image_features(pixel_values=pixel_values))

    if name == "text_model":
        # Two lengths, so the padded row exercises the attention mask during tracing.
        enc = tokenizer(["a photo of a cat", "two red apples on a wooden table"], padding=True,
                        return_tensors="pt")
        return TextEmbeds(model), (enc["input_ids"].long(), enc["attention_mask"].long())
    size = int(model.config.vision_config.image_size)
    pixels = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    return ImageEmbeds(model), (pixels,)


def _pooled(features):
    # transformers 4 returns the projected tensor, transformers 5 a model output holding it.
    return features if hasattr(features, "shape") else features.pooler_output


def _export_graph(module, args: tuple, final: Path, name: str, options: dict) -> None:
    """fp32 trace -> (optimise) -> (fp16 | int8); the last step writes ``final`` itself and
    intermediates (with their external data) are removed."""
    inputs, outputs = GRAPH_IO[name]
    steps = conversion_steps(optimize=options["optimize"], fp16=options["fp16"],
                             int8=options["int8"])
    export_converted(module, args, final, steps, input_names=inputs, output_names=outputs,
                     dynamic_axes=DYNAMIC_AXES[name], opset=options["opset"])


def _copy_processing_files(src_dir: Path, out_dir: Path) -> None:
    for name in COPIED_FILES:
        if (src_dir / name).is_file():
            shutil.copy2(src_dir / name, out_dir / name)
