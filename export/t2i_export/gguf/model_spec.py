"""A checkpoint's ``config.json`` as the hyper-parameters llama.cpp reads from a GGUF header.

Only the Llama and Qwen2 causal-LM families are supported: they are the rewriter / planner
models this project ships (Llama-3.x Instruct, Qwen2.5 Instruct, the tiny random Llama).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import gguf
import numpy as np

from t2i_export.gguf.json_file import read_json_object

# HF class -> (GGUF architecture, whether q/k rows need llama.cpp's RoPE permutation).
# Llama checkpoints store q/k for HF's "rotate half" RoPE; llama.cpp's LLAMA graph uses the
# interleaved (GPT-J) layout, so convert_hf_to_gguf.py permutes them. Qwen2 runs NEOX RoPE in
# llama.cpp, which is HF's layout already.
SUPPORTED_ARCHITECTURES: dict[str, tuple[gguf.MODEL_ARCH, bool]] = {
    "LlamaForCausalLM": (gguf.MODEL_ARCH.LLAMA, True),
    "Qwen2ForCausalLM": (gguf.MODEL_ARCH.QWEN2, False),
}


@dataclass(frozen=True)
class ModelSpec:
    """What the GGUF header needs to know about one checkpoint."""

    hf_architecture: str
    arch: gguf.MODEL_ARCH
    permute_qk: bool
    n_layers: int
    context_length: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    vocab_size: int
    rms_eps: float
    rope_theta: float
    rope: dict = field(default_factory=dict)  # HF rope_parameters / rope_scaling, may be empty

    @property
    def arch_name(self) -> str:
        return gguf.MODEL_ARCH_NAMES[self.arch]


_REQUIRED_KEYS = ("num_attention_heads", "hidden_size", "num_hidden_layers", "intermediate_size",
                  "vocab_size")


def read_model_spec(model_dir: Path) -> ModelSpec:
    """Parse ``model_dir/config.json``; ValueError for a missing file or an unsupported model."""
    config_path = Path(model_dir) / "config.json"
    if not config_path.is_file():
        raise ValueError(f"no config.json in {model_dir}: not a transformers checkpoint")
    config = read_json_object(config_path)
    names = config.get("architectures") or []
    names = names if isinstance(names, list) else [names]
    supported = [n for n in names if isinstance(n, str) and n in SUPPORTED_ARCHITECTURES]
    if not supported:
        raise ValueError(
            f"{model_dir}: architecture {names or config.get('model_type')!r} is not supported by "
            f"the GGUF exporter (supported: {', '.join(SUPPORTED_ARCHITECTURES)})")
    missing = [k for k in _REQUIRED_KEYS if not isinstance(config.get(k), int) or config[k] <= 0]
    if missing:
        raise ValueError(f"{config_path}: needs positive integer {', '.join(missing)}")
    arch, permute = SUPPORTED_ARCHITECTURES[supported[0]]
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    n_head = config["num_attention_heads"]
    n_embd = config["hidden_size"]
    return ModelSpec(
        hf_architecture=supported[0], arch=arch, permute_qk=permute,
        n_layers=config["num_hidden_layers"],
        context_length=config.get("max_position_embeddings", 2048),
        n_embd=n_embd, n_ff=config["intermediate_size"], n_head=n_head,
        n_head_kv=config.get("num_key_value_heads") or n_head,
        head_dim=config.get("head_dim") or n_embd // n_head,
        vocab_size=config["vocab_size"], rms_eps=config.get("rms_norm_eps", 1e-6),
        rope_theta=rope.get("rope_theta", config.get("rope_theta", 10000.0)), rope=rope)


def write_architecture_metadata(writer: gguf.GGUFWriter, spec: ModelSpec) -> None:
    """The ``{arch}.*`` keys llama.cpp's model loader reads (as convert_hf_to_gguf.py writes them)."""
    writer.add_block_count(spec.n_layers)
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.n_embd)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    writer.add_rope_freq_base(float(spec.rope_theta))
    writer.add_layer_norm_rms_eps(float(spec.rms_eps))
    writer.add_vocab_size(spec.vocab_size)
    if spec.arch == gguf.MODEL_ARCH.LLAMA:
        writer.add_rope_dimension_count(spec.head_dim)
    if spec.head_dim != spec.n_embd // spec.n_head:  # e.g. models with a decoupled head_dim
        writer.add_key_length(spec.head_dim)
        writer.add_value_length(spec.head_dim)
    _write_rope_scaling(writer, spec)


def _write_rope_scaling(writer: gguf.GGUFWriter, spec: ModelSpec) -> None:
    rope_type = (spec.rope.get("rope_type") or spec.rope.get("type") or "default").lower()
    factor = spec.rope.get("factor")
    if rope_type == "default":
        return
    if rope_type == "linear" and factor is not None:
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(factor)
    elif rope_type == "yarn" and factor is not None:
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(factor)
        writer.add_rope_scaling_orig_ctx_len(spec.rope["original_max_position_embeddings"])
    elif rope_type == "llama3" and spec.arch == gguf.MODEL_ARCH.LLAMA:
        pass  # encoded as the rope_freqs tensor (llama3_rope_factors)
    else:
        # Silently dropping a RoPE scaling would give a model that degrades past some length.
        raise ValueError(f"RoPE scaling {rope_type!r} is not supported by the GGUF exporter")


def llama3_rope_factors(spec: ModelSpec) -> np.ndarray | None:
    """Llama-3.1+ frequency-dependent RoPE scaling as the ``rope_freqs`` tensor, shape
    ``[head_dim // 2]`` float32; None for other RoPE types. Same formula as llama.cpp's
    convert_hf_to_gguf.py (and transformers' ``_compute_llama3_parameters``)."""
    if (spec.rope.get("rope_type") or "").lower() != "llama3":
        return None
    dim = spec.head_dim
    freqs = 1.0 / (spec.rope_theta ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor = spec.rope.get("factor", 8.0)
    low_freq_factor = spec.rope.get("low_freq_factor", 1.0)
    high_freq_factor = spec.rope.get("high_freq_factor", 4.0)
    old_context = spec.rope.get("original_max_position_embeddings", 8192)
    low_freq_wavelen = old_context / low_freq_factor
    high_freq_wavelen = old_context / high_freq_factor
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / float(freq)
        if wavelen < high_freq_wavelen:
            factors.append(1.0)
        elif wavelen > low_freq_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(factors, dtype=np.float32)
