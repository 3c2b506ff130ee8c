"""llama.cpp sampler chains for one reply: seeded sampling, greedy decoding, JSON grammars.

Built from llama.cpp's C sampler API (``llama_cpp.llama_sampler_*``) rather than
``Llama.generate`` so that the order matches transformers (temperature, then nucleus over the
tempered distribution), nothing else is applied (no top-k / min-p / repeat penalty defaults),
and a grammar can be finished when the token budget runs out (see ``closing_bias``).
"""
from __future__ import annotations

import ctypes
import json
import re
from dataclasses import dataclass

import llama_cpp

# llama.cpp reads seed 0xFFFFFFFF (LLAMA_DEFAULT_SEED) as "pick a random seed".
_SEED_MODULUS = 0xFFFFFFFF
# Logit offsets for finishing a grammar: end of generation; then closer-only tokens that start
# with a quote (inside a string they end it; where the grammar allows a quote outside one, a
# key or value is required anyway); then other closer-only tokens ("]", "}", "]}"; never first,
# since inside a string they are plain text); then a bare comma (needed e.g. between the
# required numbers of a box). Longer closers win within a rank. Far above any real logit, so
# the choice is the first closer the grammar allows; other tokens keep their model order.
_EOG_BIAS, _QUOTE_BIAS, _CLOSER_BIAS, _COMMA_BIAS = 1000.0, 600.0, 500.0, 100.0


@dataclass(frozen=True)
class SamplingSettings:
    """One reply's decoding: ``temperature == 0`` is greedy; ``seed`` drives the draw."""

    temperature: float
    top_p: float
    seed: int


# llama.cpp's own JSON string character rule. llama-cpp-python's Python port of the schema
# converter writes ``char ::= [^"\\] | ...``, which lets raw control characters (byte-level
# tokens such as 0x04) into strings, and json.loads rejects those.
_JSON_CHAR_RULE = r'char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'


def json_schema_grammar(schema: dict) -> str:
    """GBNF for JSON matching ``schema`` (llama-cpp-python's port of llama.cpp's converter,
    with llama.cpp's stricter string-character rule)."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammar = json_schema_to_gbnf(json.dumps(schema))
    return re.sub(r"^char ::= .*$", lambda _: _JSON_CHAR_RULE, grammar, flags=re.MULTILINE)


class SamplerChain:
    """An owned ``llama_sampler`` chain; ``sample`` draws and accepts the next token."""

    def __init__(self, vocab, grammar: str | None, settings: SamplingSettings | None,
                 logit_bias: dict[int, float] | None = None, n_vocab: int = 0):
        self.handle = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        try:
            if grammar is not None:
                grammar_sampler = llama_cpp.llama_sampler_init_grammar(
                    vocab, grammar.encode("utf-8"), b"root")
                if not grammar_sampler:
                    raise ValueError("llama.cpp could not parse the grammar")
                self._add(grammar_sampler)
            if logit_bias:
                self._add(_logit_bias_sampler(logit_bias, n_vocab))
            if settings is None or settings.temperature == 0:
                self._add(llama_cpp.llama_sampler_init_greedy())
            else:
                self._add(llama_cpp.llama_sampler_init_temp(settings.temperature))
                self._add(llama_cpp.llama_sampler_init_top_p(settings.top_p, 1))
                self._add(llama_cpp.llama_sampler_init_dist(settings.seed % _SEED_MODULUS))
        except BaseException:
            self.close()
            raise

    def _add(self, sampler) -> None:
        llama_cpp.llama_sampler_chain_add(self.handle, sampler)  # the chain takes ownership

    def sample(self, ctx) -> int:
        """Draw from the logits of the last evaluated token and advance the grammar state."""
        return llama_cpp.llama_sampler_sample(self.handle, ctx, -1)

    def accept(self, token: int) -> None:
        """Advance the state (grammar) as if ``token`` had been drawn."""
        llama_cpp.llama_sampler_accept(self.handle, token)

    def close(self) -> None:
        if self.handle:
            llama_cpp.llama_sampler_free(self.handle)
            self.handle = None

    def __enter__(self) -> SamplerChain:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def closing_bias(pieces: list[str], eog_ids: set[int]) -> dict[int, float]:
    """Per-token logit offsets that steer a grammar to its shortest-ish valid ending.

    ``pieces[i]`` is token i's text. Used only after the reply's token budget is spent, with
    greedy decoding under the same grammar: strings close at the next ``"``, arrays and objects
    at the next ``]`` / ``}`` the grammar allows, numbers end at ``,`` / ``]``, and generation
    stops as soon as the grammar allows end-of-generation.
    """
    bias = {i: _EOG_BIAS for i in eog_ids}
    for i, piece in enumerate(pieces):
        text = piece.strip()
        if i in bias or not text:
            continue
        if set(text) <= set('"]}'):
            bias[i] = (_QUOTE_BIAS if text.startswith('"') else _CLOSER_BIAS) + len(text)
        elif text == ",":
            bias[i] = _COMMA_BIAS
    return bias


def _logit_bias_sampler(bias: dict[int, float], n_vocab: int):
    entries = (llama_cpp.llama_logit_bias * len(bias))()
    for slot, (token, value) in enumerate(bias.items()):
        entries[slot].token = token
        entries[slot].bias = value
    return llama_cpp.llama_sampler_init_logit_bias(
        n_vocab, len(bias), ctypes.cast(entries, llama_cpp.llama_logit_bias_p))
