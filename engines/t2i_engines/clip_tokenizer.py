"""CLIP tokenisation with the ``tokenizers`` library alone (no transformers, no torch), from the
``tokenizer.json`` + ``tokenizer_config.json`` that transformers' fast CLIP tokenizer saves.

Ids equal transformers' ``CLIPTokenizer``'s for the same call: BOS/EOS from the file's
post-processor, truncation to ``max_length`` with room for them, right padding with the
config's ``pad_token``. The call mirrors the small part of transformers' API that the engines
and ``t2i_engines.draft_args`` use.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def _token_text(value) -> str | None:
    """tokenizer_config.json writes special tokens as strings or as {"content": ...}."""
    return value.get("content") if isinstance(value, dict) else value


class ClipTokenizer:
    def __init__(self, folder: str | Path):
        from tokenizers import Tokenizer

        folder = Path(folder)
        try:
            self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except Exception as exc:  # tokenizers raises plain Exceptions for malformed files
            raise ValueError(f"{folder}: unreadable tokenizer files: {exc}") from exc
        self._word_end = getattr(self._tok.model, "end_of_word_suffix", None)
        self._tok.no_padding()
        self._tok.no_truncation()
        self.model_max_length = int(config.get("model_max_length", 77))
        pad = _token_text(config.get("pad_token")) or _token_text(config.get("eos_token"))
        self.pad_token_id = self._tok.token_to_id(pad) if pad else None
        if self.pad_token_id is None:
            raise ValueError(f"{folder}: pad token {pad!r} is not in the vocabulary")

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Ids of ``text``, untruncated."""
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids) -> str:
        """Text of ``ids``; word ends ("</w>") become spaces, as transformers' CLIP decode."""
        text = self._tok.decode(list(ids), skip_special_tokens=True)
        return text.replace(self._word_end, " ").strip() if self._word_end else text

    def __call__(self, text, *, padding: bool | str = False, truncation: bool = False,
                 max_length: int | None = None, add_special_tokens: bool = True,
                 return_tensors: str | None = None, verbose: bool = False) -> dict:
        """transformers-style: ``{"input_ids", "attention_mask"}`` for a string (lists) or a
        list of strings (``return_tensors="np"``: int64 arrays, padded to the longest or, with
        ``padding="max_length"``, to ``max_length``)."""
        single = isinstance(text, str)
        limit = max_length or self.model_max_length
        rows = [self._truncated(t, limit, add_special_tokens) if truncation
                else self.encode(t, add_special_tokens=add_special_tokens)
                for t in ([text] if single else text)]
        if padding and padding != "do_not_pad":
            width = limit if padding == "max_length" else max(map(len, rows), default=0)
            masks = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
            rows = [r + [self.pad_token_id] * (width - len(r)) for r in rows]
        else:
            masks = [[1] * len(r) for r in rows]
        if return_tensors == "np":
            return {"input_ids": np.asarray(rows, dtype=np.int64),
                    "attention_mask": np.asarray(masks, dtype=np.int64)}
        if single:
            return {"input_ids": rows[0], "attention_mask": masks[0]}
        return {"input_ids": rows, "attention_mask": masks}

    def _truncated(self, text: str, limit: int, add_special_tokens: bool) -> list[int]:
        ids = self.encode(text, add_special_tokens=add_special_tokens)
        if len(ids) <= limit:
            return ids
        if not add_special_tokens:
            return ids[:limit]
        return ids[:limit - 1] + ids[-1:]  # keep BOS and the first tokens, end with EOS
