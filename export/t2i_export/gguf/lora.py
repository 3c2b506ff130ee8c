"""Merge a PEFT LoRA adapter into base weights: ``W += scale * B @ A`` per target module.

Implemented directly from ``adapter_config.json`` + ``adapter_model.safetensors`` (what
``peft``'s ``merge_and_unload`` computes for plain LoRA on Linear layers), so exporting needs
no peft install. Adapter features that are not a plain low-rank delta (DoRA, trained biases,
embedding LoRA, modules_to_save, fan_in_fan_out Conv1D layers) are refused, never dropped.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from t2i_export.gguf.checkpoint import SafetensorsCheckpoint
from t2i_export.gguf.json_file import read_json_object

_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])"
                       r"(?:\.[A-Za-z0-9_-]+)?\.weight$")


@dataclass(frozen=True)
class LoraModule:
    """One adapted Linear: ``A`` is ``[r, in]``, ``B`` is ``[out, r]`` (tensor names)."""

    a_name: str
    b_name: str
    scale: float


class LoraAdapter:
    """A PEFT LoRA adapter directory; ``merge`` adds its delta to a base weight by HF name."""

    def __init__(self, weights: SafetensorsCheckpoint, modules: dict[str, LoraModule]):
        self.weights = weights
        self.modules = modules  # base weight name ("...q_proj.weight") -> its LoRA factors

    @classmethod
    def load(cls, adapter_dir: Path) -> LoraAdapter:
        adapter_dir = Path(adapter_dir)
        config_path = adapter_dir / "adapter_config.json"
        weights_path = adapter_dir / "adapter_model.safetensors"
        if not config_path.is_file() or not weights_path.is_file():
            raise ValueError(f"{adapter_dir}: a LoRA adapter needs adapter_config.json and "
                             "adapter_model.safetensors")
        config = read_json_object(config_path)
        _check_plain_lora(config, adapter_dir)
        weights = SafetensorsCheckpoint.open_file(weights_path)
        return cls(weights, _pair_factors(weights.names, config, adapter_dir))

    def merge(self, name: str, weight: np.ndarray) -> np.ndarray:
        """``weight`` (float32, HF layout ``[out, in]``) plus this adapter's delta for ``name``."""
        module = self.modules.get(name)
        if module is None:
            return weight
        a = self.weights.load(module.a_name).astype(np.float64)
        b = self.weights.load(module.b_name).astype(np.float64)
        if b.shape[1] != a.shape[0] or (b.shape[0], a.shape[1]) != weight.shape:
            raise ValueError(f"LoRA factors for {name}: B{b.shape} @ A{a.shape} does not match "
                             f"the base weight {weight.shape}")
        return (weight.astype(np.float64) + module.scale * (b @ a)).astype(np.float32)

    def check_targets(self, base_names: list[str]) -> None:
        """ValueError if the adapter adapts a weight the base checkpoint does not have."""
        missing = sorted(set(self.modules) - set(base_names))
        if missing:
            raise ValueError(f"LoRA adapter targets weights missing from the base model: "
                             f"{', '.join(missing[:5])}")


def _check_plain_lora(config: dict, adapter_dir: Path) -> None:
    refusals = {
        "peft_type": config.get("peft_type", "LORA") != "LORA",
        "use_dora": bool(config.get("use_dora")),
        "fan_in_fan_out": bool(config.get("fan_in_fan_out")),
        "bias": config.get("bias", "none") != "none",
        "modules_to_save": bool(config.get("modules_to_save")),
    }
    bad = [key for key, refused in refusals.items() if refused]
    if bad:
        raise ValueError(f"{adapter_dir}: adapter settings {bad} are not a plain LoRA delta; "
                         "merge it with peft's merge_and_unload and export the merged model")


def _pair_factors(names: list[str], config: dict, adapter_dir: Path) -> dict[str, LoraModule]:
    factors: dict[str, dict[str, str]] = {}
    for name in names:
        match = _LORA_KEY.match(name)
        if match is None:
            raise ValueError(f"{adapter_dir}: unsupported adapter tensor {name!r}")
        factors.setdefault(match["module"], {})[match["part"]] = name
    modules = {}
    for module, parts in factors.items():
        if set(parts) != {"A", "B"}:
            raise ValueError(f"{adapter_dir}: {module} has lora_{''.join(parts)} but not both A and B")
        modules[f"{module}.weight"] = LoraModule(parts["A"], parts["B"], _scale(module, config))
    return modules


def _scale(module: str, config: dict) -> float:
    """alpha / r (alpha / sqrt(r) with rsLoRA), honouring per-module rank/alpha patterns."""
    rank = _pattern_value(module, config.get("rank_pattern") or {}, config["r"])
    alpha = _pattern_value(module, config.get("alpha_pattern") or {}, config.get("lora_alpha", rank))
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def _pattern_value(module: str, patterns: dict, default):
    # peft matches a pattern key against the end of the dotted module name.
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?{key}$", module):
            return value
    return default
