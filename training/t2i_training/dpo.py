"""One DPO update of the policy with TRL's ``DPOTrainer`` (no SFT, as in arXiv 2510.12041).

Reference for round r = the policy after round r−1. The policy arrives as a ``PeftModel``
whose adapter ``"default"`` holds round r−1's LoRA (a fresh, zero-effect LoRA in round 1).
Given no ``ref_model``, TRL 1.16 copies that adapter into a frozen ``"ref"`` adapter and
computes reference log-probs with it, so the reference is exactly the previous policy without
a second copy of the base model and without merging into a 4-bit base (which would
re-quantize it). Training continues the same adapter, so each round's saved adapter is the
whole policy relative to the base model.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from t2i_training.config import DPOSettings
from t2i_sdk.config import RewriteConfig
from t2i_sdk.stages.rewrite import rewrite_messages

from t2i_training.policy import Policy


def preference_dataset(pairs: list[dict], rewrite: RewriteConfig = RewriteConfig()):
    """TRL's conversational preference format from pairs.jsonl records (those with a choice):
    the prompt is the chat the deployed rewriter sees (system prompt, few-shot turns)."""
    from datasets import Dataset

    rows = [{"prompt": rewrite_messages(p["prompt"], rewrite),
             "chosen": [{"role": "assistant", "content": p["chosen_raw"]}],
             "rejected": [{"role": "assistant", "content": p["rejected_raw"]}]} for p in pairs]
    return Dataset.from_list(rows)


@contextmanager
def _quiet_datasets():
    """No "Tokenizing train dataset" bars from ``datasets`` inside the block."""
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()


def accumulation(n_pairs: int, settings: DPOSettings) -> tuple[int, int]:
    """``(micro batch, accumulation steps)``: reach ``batch_size`` pairs per optimizer step,
    but never accumulate past one round's pairs (a round smaller than a batch still steps)."""
    micro = max(1, min(settings.micro_batch_size, n_pairs))
    wanted = max(1, settings.batch_size // micro)
    return micro, max(1, min(wanted, -(-n_pairs // micro)))


def train_dpo(policy: Policy, pairs: list[dict], settings: DPOSettings, out_dir: Path, *,
              seed: int, rewrite: RewriteConfig = RewriteConfig(),
              on_step: Callable[[int, int], None] | None = None) -> dict:
    """Run DPO on ``pairs`` in place (adapter ``"default"``); returns summary metrics
    (last-step loss, reward accuracy and margin, steps, seconds)."""
    import torch
    from transformers import PrinterCallback, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    micro, accum = accumulation(len(pairs), settings)
    on_cuda = policy.device.startswith("cuda")
    args = DPOConfig(
        output_dir=str(out_dir), beta=settings.beta, learning_rate=settings.learning_rate,
        per_device_train_batch_size=micro, gradient_accumulation_steps=accum,
        num_train_epochs=settings.epochs, max_length=settings.max_length,
        gradient_checkpointing=settings.gradient_checkpointing,
        disable_dropout=settings.disable_dropout,
        bf16=on_cuda and torch.cuda.is_bf16_supported(), fp16=False, use_cpu=not on_cuda,
        report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True, seed=seed,
        data_seed=seed)

    class _Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if on_step is not None:
                on_step(state.global_step, state.max_steps)

    with _quiet_datasets():
        trainer = DPOTrainer(model=policy.model, args=args, processing_class=policy.tokenizer,
                             train_dataset=preference_dataset(pairs, rewrite), callbacks=[_Progress()])
    trainer.remove_callback(PrinterCallback)  # our own progress bar reports steps
    result = trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    last = logs[-1] if logs else {}
    first = logs[0] if logs else {}
    policy.model.set_adapter("default")
    return {"pairs": len(pairs), "steps": trainer.state.global_step,
            "micro_batch": micro, "accumulation": accum,
            "first_loss": first.get("loss"), "loss": last.get("loss"),
            "reward_accuracy": last.get("rewards/accuracies"),
            "reward_margin": last.get("rewards/margins"),
            "seconds": round(result.metrics.get("train_runtime", 0.0), 3)}
