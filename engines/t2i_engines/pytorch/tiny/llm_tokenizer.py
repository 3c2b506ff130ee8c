"""A tiny byte-level BPE chat tokenizer, trained locally so tests and the demo need no downloads.

The corpus is built in code (prompts of objects, colours, counts, relations, scenes, styles and
layout JSON), so the same ``vocab_size`` always gives the same vocabulary and merges.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Sequence

BOS_TOKEN = "<|begin_of_text|>"
EOS_TOKEN = "<|eot_id|>"  # ends an assistant turn, as in Llama-3 Instruct
END_OF_TEXT_TOKEN = "<|end_of_text|>"
PAD_TOKEN = "<|pad|>"
UNK_TOKEN = "<|unk|>"
HEADER_TOKENS = ("<|start_header_id|>", "<|end_header_id|>")
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, END_OF_TEXT_TOKEN, PAD_TOKEN, UNK_TOKEN, *HEADER_TOKENS)

# Llama-3 layout: a role header, a blank line, the content, then <|eot_id|>.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{{ message['content'] | trim }}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

_OBJECTS = (
    "cat", "dog", "horse", "bird", "car", "bicycle", "apple", "banana", "cup", "chair",
    "table", "book", "clock", "vase", "lamp", "tree", "flower", "boat", "train", "fire hydrant",
    "teddy bear", "umbrella", "bench", "giraffe", "elephant", "laptop", "bottle", "pizza",
)
_COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black",
           "white", "gray")
_COUNTS = ("a", "one", "two", "three", "four", "five", "several")
_RELATIONS = ("on the left of", "on the right of", "above", "below", "next to", "behind",
              "in front of", "on top of", "under", "near")
_SCENES = ("in a park", "on a beach", "in a kitchen", "on a street", "in a forest",
           "in a living room", "at night", "under a blue sky", "in the snow", "on a table")
_STYLES = ("a photo of", "a painting of", "a watercolor of", "a digital art of",
           "a high quality photograph of", "a detailed illustration of")
_DETAILS = ("small", "large", "wooden", "shiny", "fluffy", "old", "modern", "tiny", "bright",
            "soft lighting", "sharp focus", "highly detailed", "cinematic", "4k", "realistic")
_INSTRUCTIONS = (
    "Rewrite the prompt so it is more detailed and faithful.",
    "Plan a layout as JSON with objects, phrases, labels, colors and boxes.",
    "You are a helpful assistant that writes image prompts.",
    "Return only JSON. Boxes are x0, y0, x1, y1 in [0, 1].",
)


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "sh", "ch")) else "s")


def _prompt_lines() -> list[str]:
    """Deterministic prompt sentences covering every word list."""
    lines = []
    pairs = itertools.product(enumerate(_OBJECTS), enumerate(_COLORS))
    for (i, obj), (j, color) in pairs:
        count = _COUNTS[(i + j) % len(_COUNTS)]
        noun = obj if count in ("a", "one") else _plural(obj)
        other = _OBJECTS[(i * 7 + j * 3 + 1) % len(_OBJECTS)]
        relation = _RELATIONS[(i + 2 * j) % len(_RELATIONS)]
        scene = _SCENES[(3 * i + j) % len(_SCENES)]
        style = _STYLES[(i + j) % len(_STYLES)]
        lines.append(f"{style} {count} {color} {noun} {relation} a {other} {scene}.")
        detail = _DETAILS[(i + 3 * j) % len(_DETAILS)]
        medium = style.split(" of")[0]
        lines.append(f"{count.capitalize()} {detail} {color} {noun} {scene}, {medium}.")
    return lines


def _layout_lines() -> list[str]:
    """Layout JSON like the planner asks for, so braces, keys and decimals merge well."""
    lines = []
    for i, obj in enumerate(_OBJECTS):
        color = _COLORS[i % len(_COLORS)]
        x0, y0 = round(0.05 * (i % 10), 2), round(0.1 * (i % 5), 2)
        box = [x0, y0, round(x0 + 0.4, 2), round(y0 + 0.45, 2)]
        layout = {"objects": [{"phrase": f"a {color} {obj}", "label": obj, "color": color,
                               "box": box}],
                  "background": _SCENES[i % len(_SCENES)].split(" ", 1)[1]}
        lines.append(json.dumps(layout))
    return lines


def training_corpus() -> list[str]:
    """The built-in English corpus, in a fixed order."""
    return list(_INSTRUCTIONS) + _prompt_lines() + _layout_lines()


def train_byte_level_bpe(corpus: list[str], vocab_size: int, special_tokens: Sequence[str]):
    """A ``tokenizers.Tokenizer``: byte-level BPE (no prefix space) trained on ``corpus``, with
    ``special_tokens`` first in the vocabulary (ids 0, 1, ...). Deterministic for a given
    corpus; ``vocab_size`` is an upper bound (merges need a pair seen twice)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tokenizer


def _train_backend(vocab_size: int):
    from tokenizers import processors

    tokenizer = train_byte_level_bpe(training_corpus(), vocab_size, SPECIAL_TOKENS)
    bos_id = tokenizer.token_to_id(BOS_TOKEN)
    # Like Llama-3: plain encodes get a BOS; the chat template writes its own BOS instead.
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B",
        special_tokens=[(BOS_TOKEN, bos_id)])
    return tokenizer


def train_llm_tokenizer(out_dir: str | Path, *, vocab_size: int = 2000) -> Path:
    """Train the chat tokenizer and save it so ``AutoTokenizer.from_pretrained(out_dir)`` loads it.

    ``vocab_size`` is an upper bound: the small corpus may yield fewer merges. Returns ``out_dir``.
    """
    from transformers import PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_backend(vocab_size),
        bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN, unk_token=UNK_TOKEN,
        additional_special_tokens=[END_OF_TEXT_TOKEN, *HEADER_TOKENS],
        model_max_length=2048, padding_side="left", clean_up_tokenization_spaces=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    return out
