"""The rewriter policy: a base causal LM plus a LoRA adapter (QLoRA when 4-bit nf4 can run).

Sampling uses the same chat messages and cleaning as the SDK's ``LLMRewriter``
(``t2i_sdk.stages.rewrite.rewrite_messages`` from a ``RewriteConfig``), so what is trained is
what is deployed.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from t2i_sdk.config import RewriteConfig
from t2i_sdk.errors import InputError

from t2i_training.config import LoraSettings

METRICS_FILE = "train_metrics.json"


@dataclass(frozen=True)
class Rewrite:
    raw: str  # the policy's answer, stripped: the DPO completion
    text: str  # what conditions the image: ``clean_rewrite(raw)``, or the prompt if that is empty
    n_tokens: int  # tokens of ``raw``


@dataclass
class Policy:
    """A ``peft.PeftModel`` (adapter ``"default"`` trainable) and its tokenizer on one device."""

    model: Any
    tokenizer: Any
    device: str
    quantization: str  # resolved: "nf4" or "none"
    notes: list[str] = field(default_factory=list)


def nf4_probe(device: str) -> str | None:
    """None if a bitsandbytes 4-bit nf4 layer runs forward and backward on ``device``,
    else why not (one line)."""
    try:
        import bitsandbytes as bnb
        import torch

        layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32,
                                  quant_type="nf4").to(device)
        x = torch.randn(2, 64, device=device, requires_grad=True)
        layer(x).sum().backward()
        return None
    except Exception as e:  # ImportError, missing kernels, unsupported device: all fall back
        return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"


def resolve_quantization(mode: str, device: str) -> tuple[str, str | None]:
    """``(resolved mode, note)``: "auto" becomes "nf4" where the probe passes, else "none";
    an explicit "nf4" that cannot run raises ``InputError``."""
    if mode == "none":
        return "none", None
    why = nf4_probe(device)
    if why is None:
        return "nf4", None
    if mode == "nf4":
        raise InputError(f"quantization nf4 cannot run on {device}: {why}")
    return "none", f"4-bit nf4 unavailable on {device} ({why}); training plain LoRA instead"


def load_policy(base_model: str | Path, *, adapter_dir: str | Path | None = None,
                extra_adapters: dict[str, Path] | None = None, lora: LoraSettings = LoraSettings(),
                quantization: str = "auto", device: str = "auto",
                gradient_checkpointing: bool = False) -> Policy:
    """Base model + adapter ``"default"``: loaded from ``adapter_dir`` (trainable), or a fresh
    LoRA from ``lora`` (B = 0, so the policy starts as the base model). ``extra_adapters``
    (``{name: dir}``) load frozen beside it for :func:`use_adapter`."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from t2i_engines.pytorch.device import resolve_device

    device = resolve_device(device)
    mode, note = resolve_quantization(quantization, device)
    model, tokenizer = _load_base(Path(base_model), device, mode, gradient_checkpointing)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
    else:
        model = get_peft_model(model, LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
            target_modules=_present_targets(model, lora.target_modules), task_type="CAUSAL_LM"))
    for name, path in (extra_adapters or {}).items():
        model.load_adapter(str(path), adapter_name=name, is_trainable=False)
    model.set_adapter("default")
    return Policy(model, tokenizer, device, mode, [note] if note else [])


def _load_base(path: Path, device: str, mode: str, gradient_checkpointing: bool):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from t2i_engines.pytorch.device import loading_progress

    if not (path / "config.json").is_file():
        raise InputError(f"{path}: no causal LM checkpoint here (config.json missing)")
    on_cuda = device.startswith("cuda")
    half = torch.bfloat16 if on_cuda and torch.cuda.is_bf16_supported() else torch.float32
    kwargs = {"dtype": half}
    if mode == "nf4":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=half)
        kwargs["device_map"] = {"": device}
    with loading_progress(False):
        model = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, use_safetensors=True, trust_remote_code=False, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True,
                                                  trust_remote_code=False)
    if tokenizer.chat_template is None:
        raise InputError(f"{path}: tokenizer has no chat template")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # DPOTrainer and batched generation both want it
    if mode == "nf4":
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing)
    else:
        model = model.to(device)
    return model, tokenizer


def _present_targets(model, wanted: tuple[str, ...]) -> list[str]:
    """The target module names that exist in ``model`` (Qwen and Llama share them; others may
    not); at least one must."""
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    present = [t for t in wanted if t in names]
    if not present:
        raise InputError(f"none of the LoRA target modules {list(wanted)} exist in this model")
    return present


@contextmanager
def use_adapter(policy: Policy, name: str | None) -> Iterator[None]:
    """Run the block with adapter ``name`` active; ``None`` runs the bare base model."""
    model = policy.model
    if name is None:
        with model.disable_adapter():
            yield
        return
    previous = model.active_adapter
    model.set_adapter(name)
    try:
        yield
    finally:
        model.set_adapter(previous)


def sample_rewrites(policy: Policy, prompt: str, n: int, seed: int, *, temperature: float,
                    top_p: float = 1.0, max_new_tokens: int = 77,
                    rewrite: RewriteConfig = RewriteConfig()) -> list[Rewrite]:
    """``n`` rewrites of ``prompt`` in one batched call; the same seed gives the same list."""
    from t2i_engines.pytorch.causal_lm import CausalLMEngine
    from t2i_sdk.stages.rewrite import clean_rewrite, rewrite_messages

    engine = CausalLMEngine(policy.model, policy.tokenizer, policy.device)
    was_training = policy.model.training
    policy.model.eval()
    try:
        raws = engine.generate(rewrite_messages(prompt, rewrite), n=n, seed=seed,
                               temperature=temperature, top_p=top_p,
                               max_new_tokens=max_new_tokens, grammar=rewrite.grammar)
    finally:
        policy.model.train(was_training)
    return [Rewrite(raw, clean_rewrite(raw) or prompt, engine.count_tokens(raw)) for raw in raws]


def save_adapter(policy: Policy, out_dir: str | Path, metrics: dict | None = None) -> Path:
    """Write adapter ``"default"`` (safetensors + adapter_config.json, plus ``metrics`` as
    train_metrics.json) all-or-nothing."""
    import json

    from t2i_sdk.bundle.atomic import atomic_directory

    out_dir = Path(out_dir)
    with atomic_directory(out_dir, overwrite=True) as tmp:
        policy.model.save_pretrained(str(tmp), selected_adapters=["default"],
                                     safe_serialization=True)
        (tmp / METRICS_FILE).write_text(json.dumps(metrics or {}, indent=2) + "\n")
    return out_dir


def read_adapter_metrics(adapter_dir: str | Path) -> dict:
    import json

    path = Path(adapter_dir) / METRICS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def merge_adapter(base_model: str | Path, adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """Fold a LoRA adapter into a full-precision copy of the base: a plain transformers model
    folder (safetensors, tokenizer, chat template) that bundles and GGUF conversion accept."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from t2i_engines.pytorch.device import loading_progress
    from t2i_sdk.bundle.atomic import atomic_directory

    base_model, out_dir = Path(base_model), Path(out_dir)
    with loading_progress(False):
        model = AutoModelForCausalLM.from_pretrained(
            base_model, dtype=torch.float32, local_files_only=True, use_safetensors=True,
            trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(base_model, local_files_only=True)
        merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
        with atomic_directory(out_dir, overwrite=True) as tmp:
            merged.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
    return out_dir
