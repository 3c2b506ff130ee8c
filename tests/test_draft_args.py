"""Prompt/phrase fitting to the text encoder's position table (t2i_engines.draft_args)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")

from t2i_engines.draft_args import count_tokens, fit_to_token_limit  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import CLIPTokenizer

    from t2i_engines.pytorch.tiny.clip_tokenizer import train_clip_tokenizer

    folder = train_clip_tokenizer(tmp_path_factory.mktemp("tok"), vocab_size=1000, model_max_length=32)
    return CLIPTokenizer.from_pretrained(folder)


def test_short_text_is_unchanged(tokenizer):
    assert fit_to_token_limit(tokenizer, "a red circle", 32) == "a red circle"


def test_cut_text_always_fits_even_when_reencoding_grows(tokenizer):
    """Decoded random token runs (what an untrained rewriter writes) re-tokenise differently;
    the cut must still fit, or the text encoder's position table overflows."""
    rng = np.random.default_rng(0)
    vocab = len(tokenizer)
    for _ in range(200):
        text = tokenizer.decode(rng.integers(0, vocab, size=60).tolist(), skip_special_tokens=True)
        fitted = fit_to_token_limit(tokenizer, text, 32)
        assert count_tokens(tokenizer, fitted) <= 32
        if count_tokens(tokenizer, text) > 32:
            assert fitted and len(fitted) < len(text)
