"""Decode only the sentences of a finite grammar with transformers' ``generate``.

The sentences (``t2i_engines.finite_grammar``) are tokenised once into a trie; at each step
the reply so far walks the trie and only its children may follow (``prefix_allowed_tokens_fn``),
plus end-of-sequence where a whole sentence is done. Temperature and top-p then apply among
the allowed tokens, as llama.cpp's grammar sampler does before its own chain.
"""
from __future__ import annotations

from t2i_engines.finite_grammar import sentences

_END = -1  # trie key: a sentence ends here


class TokenTrie:
    """The token sequences of a grammar's sentences under one tokenizer."""

    def __init__(self, grammar: str, tokenizer):
        self.eos_token_id = tokenizer.eos_token_id
        texts = sentences(grammar)
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        self.root: dict = {}
        for ids in encoded:
            node = self.root
            for token in ids:
                node = node.setdefault(token, {})
            node[_END] = {}

    def allowed(self, reply: list[int]) -> list[int]:
        """Tokens that may follow ``reply`` (the tokens generated so far)."""
        node = self.root
        for token in reply:
            if token == self.eos_token_id:
                return [self.eos_token_id]  # finished: generate pads the rest with EOS
            node = node.get(token)
            if node is None:  # cannot happen under the constraint; end rather than wander
                return [self.eos_token_id]
        return [self.eos_token_id if t == _END else t for t in node]

    def prefix_fn(self, prompt_length: int):
        """A ``prefix_allowed_tokens_fn`` for a batch whose prompts are ``prompt_length``
        tokens long (one chat, so every row has the same prompt)."""
        def allowed_tokens(batch_id, input_ids) -> list[int]:
            return self.allowed(input_ids[prompt_length:].tolist())
        return allowed_tokens
