"""A tiny CLIP-style byte-level BPE tokenizer, trained locally on a built-in corpus.

The vocabulary is laid out like OpenAI CLIP's: the 256 byte symbols, the same 256 with the
``</w>`` end-of-word suffix (so any text encodes without unknown tokens), then the learned
merges, then ``<|startoftext|>`` and ``<|endoftext|>``. The result loads with
``transformers.CLIPTokenizer.from_pretrained``.
"""
from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

from t2i_engines.vocabulary import COCO_OBJECTS

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
END_OF_WORD = "</w>"
N_BASE_SYMBOLS = 2 * 256  # bytes, and bytes with the end-of-word suffix
N_SPECIAL = 2

EXTRA_OBJECTS = ("tree", "flower", "house", "ball", "box", "lamp", "hat", "shoe", "table")
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black",
          "white", "gray")
COUNTS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
RELATIONS = ("left of", "right of", "above", "below", "on top of", "under", "next to",
             "in front of", "behind", "near")
SCENES = ("on a table", "in a kitchen", "in a park", "on the street", "on the beach",
          "in a living room", "in a field", "at night", "in the snow", "on a white background")
STYLES = ("a photo of", "a painting of", "a picture of", "an image of", "a drawing of")
IRREGULAR_PLURALS = {"person": "people", "mouse": "mice", "knife": "knives", "sheep": "sheep",
                     "skis": "skis", "scissors": "scissors", "bus": "buses", "box": "boxes",
                     "couch": "couches", "sandwich": "sandwiches", "glass": "glasses",
                     "toothbrush": "toothbrushes", "bench": "benches", "dog": "dogs"}


def plural(noun: str) -> str:
    """English plural of a (possibly multi-word) noun; only the last word changes."""
    *head, last = noun.split(" ")
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if last in IRREGULAR_PLURALS:
        return " ".join([*head, IRREGULAR_PLURALS[last]])
    if last.endswith(("s", "x", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join([*head, last])


def training_corpus() -> list[str]:
    """Deterministic list of short captions and word lists covering the demo's vocabulary."""
    objects = COCO_OBJECTS + EXTRA_OBJECTS
    lines = [" ".join(objects), " ".join(plural(o) for o in objects), " ".join(COLORS),
             " ".join(COUNTS), " ".join(RELATIONS), " ".join(SCENES), " ".join(STYLES)]
    # Cycle through the lists with coprime strides so every word appears in several contexts.
    for i in range(600):
        a, b = objects[i % len(objects)], objects[(7 * i + 3) % len(objects)]
        count, color = COUNTS[i % len(COUNTS)], COLORS[(3 * i) % len(COLORS)]
        color_b = COLORS[(5 * i + 1) % len(COLORS)]
        subject = f"{count} {color} {plural(a) if count != 'one' else a}"
        relation, scene = RELATIONS[i % len(RELATIONS)], SCENES[(i // 3) % len(SCENES)]
        style = STYLES[i % len(STYLES)]
        lines.append(f"{style} {subject} {relation} a {color_b} {b} {scene}")
    lines += [f"a {c} {o}" for c, o in itertools.product(COLORS, objects)]
    return lines


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character map, in CLIP's vocabulary order."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, codes)}


def _word_counts() -> Counter[tuple[str, ...]]:
    """Corpus words as byte-symbol tuples, split exactly as ``CLIPTokenizer`` splits text."""
    from transformers import CLIPTokenizer

    backend = CLIPTokenizer().backend_tokenizer  # the tokenizers normaliser + pre-tokeniser
    counts: Counter[tuple[str, ...]] = Counter()
    for line in training_corpus():
        normalized = backend.normalizer.normalize_str(line)
        for word, _ in backend.pre_tokenizer.pre_tokenize_str(normalized):
            counts[(*word[:-1], word[-1] + END_OF_WORD)] += 1
    return counts


def _merge_pair(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def _learn_merges(n_merges: int) -> list[tuple[str, str]]:
    """Byte-level BPE merges, most frequent pair first, ties broken alphabetically.

    Plain Python rather than ``tokenizers.trainers.BpeTrainer``: that trainer breaks count
    ties in hash-map order, which changes from process to process, so its output is not
    reproducible. The corpus is small, so this takes well under a second.
    """
    words = _word_counts()
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, count in words.items():
            merged[_merge_pair(word, best) if best[0] in word else word] += count
        words = merged
    return merges


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """CLIP vocabulary order: bytes, bytes + ``</w>``, merge results, then the two specials."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + END_OF_WORD for s in symbols] + ["".join(p) for p in merges]
    tokens += [BOS, EOS]
    vocab: dict[str, int] = {}
    for token in tokens:
        vocab.setdefault(token, len(vocab))
    return vocab


def train_clip_tokenizer(out_dir, *, vocab_size: int = 1000, model_max_length: int = 77) -> Path:
    """Train and save a CLIP-style BPE tokenizer of at most ``vocab_size`` tokens into ``out_dir``.

    Deterministic: the same arguments write the same files. Needs ``vocab_size >= 514``
    (512 byte symbols + 2 special tokens); the corpus may yield fewer merges than asked for.
    Returns ``out_dir`` as a Path.
    """
    from transformers import CLIPTokenizer

    if vocab_size < N_BASE_SYMBOLS + N_SPECIAL:
        raise ValueError(f"vocab_size must be >= {N_BASE_SYMBOLS + N_SPECIAL}, got {vocab_size}")
    if model_max_length < 3:
        raise ValueError(f"model_max_length must be >= 3, got {model_max_length}")
    merges = _learn_merges(vocab_size - N_BASE_SYMBOLS - N_SPECIAL)
    vocab = build_vocab(merges)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    return out
