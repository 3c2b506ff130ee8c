"""Rewrite stage: identity, or an LLM that rewrites the prompt n times (input-side scaling,
arXiv 2510.12041). Ranking always scores against the user's original prompt, not the rewrite."""
from __future__ import annotations

import re
from typing import Protocol

from t2i_sdk.config import RewriteConfig


class ChatLM(Protocol):
    def generate(self, messages: list[dict], n: int, seed: int, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int = 128,
                 grammar: str | None = None) -> list[str]: ...


class IdentityRewriter:
    """Returns the prompt itself: the default, costs nothing."""

    def rewrite(self, prompt: str, n: int, seed: int) -> list[str]:
        return [prompt] * n


class LLMRewriter:
    """Samples ``n`` rewrites from a chat LM in one batched call."""

    def __init__(self, lm: ChatLM, config: RewriteConfig = RewriteConfig()):
        self.lm = lm
        self.config = config

    def rewrite(self, prompt: str, n: int, seed: int) -> list[str]:
        config = self.config
        outputs = self.lm.generate(rewrite_messages(prompt, config), n=n, seed=seed,
                                   temperature=config.temperature, top_p=config.top_p,
                                   max_new_tokens=config.max_new_tokens, grammar=config.grammar)
        # An empty or whitespace answer is useless as conditioning: keep the user's words instead.
        return [clean_rewrite(text) or prompt for text in outputs]


def rewrite_messages(prompt: str, config: RewriteConfig = RewriteConfig()) -> list[dict]:
    """The chat the rewriter LLM answers: system prompt, few-shot turns, the user's prompt.
    Training (``t2i_training.policy``) builds its chats here too, so what is trained is what
    is deployed."""
    messages = [{"role": "system", "content": config.system_prompt}]
    for request, rewrite in config.examples:
        messages += [{"role": "user", "content": request},
                     {"role": "assistant", "content": rewrite}]
    return messages + [{"role": "user", "content": prompt}]


_QUOTES = "\"'`“”‘’"


def clean_rewrite(text: str) -> str:
    """First non-empty line of an LLM answer, without a 'Prompt:' prefix or wrapping quotes."""
    for line in text.strip().splitlines():
        line = line.strip().strip(_QUOTES)
        line = re.sub(r"^\s*(rewritten prompt|prompt)\s*:\s*", "", line, flags=re.I)
        line = line.strip().strip(_QUOTES).strip()
        if line:
            return " ".join(line.split())
    return ""
