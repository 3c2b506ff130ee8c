"""Decode only the sentences of a finite grammar with transformers' ``generate``.

The sentences (``t2i_engines.finite_grammar``) are tokenised once into a trie; at each step
the reply so far walks the trie and only its children may follow (``prefix_allowed_tokens_fn``),
plus end-of-sequence where a whole sentence is done. Temperature and top-p then apply among
the allowed tokens, as llama.cpp's grammar sampler does before its own chain.
"""
from __future__ import annotations

from t2i_engines.finite_grammar import GrammarError, sentences

_END = -1  # trie key: a sentence ends here


class TokenTrie:
    """The token sequences of a grammar's sentences under one tokenizer. ``eos_token_ids``:
    the ids that end generation (the first one is the one the trie offers)."""

    def __init__(self, grammar: str, tokenizer, eos_token_ids: list[int]):
        if not eos_token_ids:
            raise GrammarError("the tokenizer has no end-of-sequence token to end a sentence")
        self.tokenizer = tokenizer
        self.eos, self.eos_ids = eos_token_ids[0], frozenset(eos_token_ids)
        self.texts = sentences(grammar)
        encoded = tokenizer(self.texts, add_special_tokens=False)["input_ids"]
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
            if token in self.eos_ids:
                return [self.eos]  # finished; generate stops (or pads) this row
            node = node.get(token)
            if node is None:  # cannot happen under the constraint; end rather than wander
                return [self.eos]
        return [self.eos if t == _END else t for t in node]

    def check_boundary(self, prompt_text: str) -> None:
        """The trie holds each sentence tokenised on its own; that is what the model writes
        only if the prompt's last token does not merge with the reply's first (the chat
        template's assistant header ends in a newline or a special token). Raise otherwise."""
        prompt = self.tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        sentence = self.texts[0]
        joint = self.tokenizer(prompt_text + sentence, add_special_tokens=False)["input_ids"]
        alone = self.tokenizer(sentence, add_special_tokens=False)["input_ids"]
        if joint != prompt + alone:
            raise GrammarError("the chat template's assistant header and a reply tokenise "
                               "differently together than apart; grammar decoding needs a "
                               "header that ends in a newline or a special token")

    def prefix_fn(self, prompt_length: int):
        """A ``prefix_allowed_tokens_fn`` for a batch whose prompts are ``prompt_length``
        tokens long (one chat, so every row has the same prompt)."""
        def allowed_tokens(batch_id, input_ids) -> list[int]:
            return self.allowed(input_ids[prompt_length:].tolist())
        return allowed_tokens
