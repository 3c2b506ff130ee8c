"""A tiny random Llama chat model: the real ``LlamaForCausalLM`` architecture at toy size.

Its output is gibberish, but it exercises the same loading, chat-template and sampling code as a
real checkpoint (Llama-3 / Qwen style), in well under a second on a CPU.
"""
from __future__ import annotations

from pathlib import Path

from t2i_engines.pytorch.tiny.llm_tokenizer import train_llm_tokenizer

HIDDEN_SIZE = 64
NUM_LAYERS = 2
NUM_HEADS = 4
NUM_KV_HEADS = 2  # grouped-query attention, as in Llama-3
INTERMEDIATE_SIZE = 128
MAX_POSITIONS = 1024


def build_tiny_llama(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Save a random ``LlamaForCausalLM`` + chat tokenizer + generation config to ``out_dir``.

    Weights are a function of ``seed`` only. Loads with ``AutoModelForCausalLM.from_pretrained``
    and ``AutoTokenizer.from_pretrained`` (no remote code). Returns ``out_dir``.
    """
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(train_llm_tokenizer(out))
    end_ids = [tokenizer.convert_tokens_to_ids(t) for t in ("<|eot_id|>", "<|end_of_text|>")]
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN_SIZE, intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=NUM_LAYERS, num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_KV_HEADS, max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=end_ids,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    # Seed a private generator state so building a model leaves the caller's RNG untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=end_ids,
        pad_token_id=tokenizer.pad_token_id, do_sample=True, temperature=1.0, top_p=1.0,
        max_new_tokens=128)
    model.save_pretrained(out, safe_serialization=True)
    return out
