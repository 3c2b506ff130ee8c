"""A byte-level BPE ``tokenizer.json`` as GGUF tokenizer metadata (llama.cpp's "gpt2" model).

llama.cpp re-implements each pre-tokenizer (the regex that splits text before BPE) and picks
it by name from ``tokenizer.ggml.pre``. convert_hf_to_gguf.py finds that name by hashing the
token ids of a probe string against a table of known models; a checkpoint it does not know
(like our locally trained tiny tokenizer) gets no name, and llama.cpp then falls back to a
"default" regex that splits digits and punctuation differently from the HF tokenizer. We read
the pre-tokenizer's definition instead and map the regexes llama.cpp implements to their names;
anything else is refused rather than exported with silently different tokenisation.
"""
from __future__ import annotations

import json
from pathlib import Path

import gguf

from t2i_export.gguf.json_file import read_json_object

# Exactly what tokenizers' ByteLevel(use_regex=True) applies (the GPT-2 regex); llama.cpp's
# "gpt-2" pre-tokenizer uses the same expression.
GPT2_PATTERN = "byte-level-gpt2"
# The Split regexes in Llama-3's and Qwen2's tokenizer.json (llama-vocab.cpp quotes both).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# pattern -> (tokenizer.ggml.pre name, normalizer types HF applies that llama.cpp accounts for,
#             whether HF's BPE uses ignore_merges, which llama.cpp switches on for that name)
PRE_TOKENIZERS: dict[str, tuple[str, tuple[str | None, ...], bool]] = {
    GPT2_PATTERN: ("gpt-2", (None,), False),
    LLAMA3_PATTERN: ("llama-bpe", (None,), True),
    QWEN2_PATTERN: ("qwen2", (None, "NFC"), False),
}


def write_tokenizer_metadata(writer: gguf.GGUFWriter, model_dir: Path, vocab_size: int) -> None:
    """Tokens, token types, merges, pre-tokenizer, special ids and chat template.

    ``vocab_size`` is the model's embedding rows; ids the tokenizer does not use (padding rows,
    as in Qwen2) become ``[PAD{id}]`` tokens of type UNUSED. ValueError when the tokenizer is not
    a byte-level BPE llama.cpp can reproduce.
    """
    tokenizer_path = Path(model_dir) / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise ValueError(f"no tokenizer.json in {model_dir}: only fast (tokenizers) byte-level "
                         "BPE tokenizers can be exported to GGUF")
    spec = read_json_object(tokenizer_path)
    if spec.get("model", {}).get("type") != "BPE":
        raise ValueError(f"{tokenizer_path}: tokenizer model {spec.get('model', {}).get('type')!r} "
                         "is not BPE; only byte-level BPE tokenizers are supported")
    tokens, token_types = token_table(spec, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer_name(spec))
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    # gguf-py's SpecialVocab is what convert_hf_to_gguf.py uses for merges (incl. the list-pair
    # format of tokenizers >= 0.20), special ids, add_bos/add_eos and the chat template
    # (tokenizer_config.json or transformers 5's chat_template.jinja).
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size)
    if not special.merges:
        raise ValueError(f"{tokenizer_path}: no BPE merges found")
    if special.chat_template is None:
        raise ValueError(f"{model_dir}: the tokenizer has no chat template")
    special.add_to_gguf(writer, quiet=True)


def pre_tokenizer_name(spec: dict) -> str:
    """The ``tokenizer.ggml.pre`` name whose llama.cpp regex equals this tokenizer's."""
    pattern = _split_pattern(spec.get("pre_tokenizer"))
    if pattern not in PRE_TOKENIZERS:
        raise ValueError(f"pre-tokenizer {json.dumps(spec.get('pre_tokenizer'))[:300]} has no "
                         "llama.cpp equivalent known to this exporter")
    name, normalizers, ignore_merges = PRE_TOKENIZERS[pattern]
    normalizer = (spec.get("normalizer") or {}).get("type")
    if normalizer not in normalizers:
        raise ValueError(f"normalizer {normalizer!r} is not supported with pre-tokenizer {name!r}")
    if bool(spec["model"].get("ignore_merges", False)) != ignore_merges:
        raise ValueError(f"BPE ignore_merges={spec['model'].get('ignore_merges')} does not match "
                         f"what llama.cpp uses for pre-tokenizer {name!r}")
    return name


def _split_pattern(pre: dict | None) -> str | None:
    """GPT2_PATTERN for a lone regex ByteLevel, the Split regex for Split + ByteLevel(no regex)."""
    if not pre:
        return None
    if pre.get("type") == "ByteLevel":
        if pre.get("use_regex", True) and not pre.get("add_prefix_space", False):
            return GPT2_PATTERN
        return None
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else None
    if not steps or len(steps) != 2:
        return None
    split, byte_level = steps
    if (split.get("type") != "Split" or split.get("behavior") != "Isolated" or split.get("invert")
            or byte_level.get("type") != "ByteLevel" or byte_level.get("use_regex", True)
            or byte_level.get("add_prefix_space", False)):
        return None
    return split.get("pattern", {}).get("Regex")


def token_table(spec: dict, vocab_size: int) -> tuple[list[str], list[int]]:
    """Token strings (byte-level symbols as stored in tokenizer.json) and their types, by id.

    Added tokens marked special, or looking like ``<|...|>``, are CONTROL (llama.cpp only parses
    them in text when asked, and never prints them); other added tokens are USER_DEFINED.
    """
    by_id: dict[int, tuple[str, int]] = {
        i: (text, gguf.TokenType.NORMAL) for text, i in spec["model"]["vocab"].items()}
    for added in spec.get("added_tokens", []):
        text = added["content"]
        control = added.get("special", False) or (text.startswith("<|") and text.endswith("|>"))
        by_id[added["id"]] = (text, gguf.TokenType.CONTROL if control
                              else gguf.TokenType.USER_DEFINED)
    if by_id and max(by_id) >= vocab_size:
        raise ValueError(f"tokenizer has token id {max(by_id)} but the model only {vocab_size} "
                         "embedding rows")
    tokens, types = [], []
    for i in range(vocab_size):
        text, kind = by_id.get(i, (f"[PAD{i}]", gguf.TokenType.UNUSED))
        tokens.append(text)
        types.append(int(kind))
    return tokens, types
