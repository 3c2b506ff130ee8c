"""A chat causal LM behind a small class: the LLM rewriter's and the LLM layout planner's model.

Works with any local ``AutoModelForCausalLM`` checkpoint that ships a chat template (Llama-3,
Qwen2.5, the tiny random Llama in ``tiny/causal_lm.py``). Weights load from safetensors only.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from t2i_engines.errors import EngineSettingsError, ModelFilesError
from t2i_engines.finite_grammar import GrammarError

from t2i_engines.pytorch.device import loading_progress, resolve_device, resolve_dtype
from t2i_engines.pytorch.token_trie import TokenTrie

if TYPE_CHECKING:
    import torch


class CausalLMEngine:
    """One chat model and its tokenizer on one device. Build it with :meth:`load`."""

    def __init__(self, model, tokenizer, device: str):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self._tries: dict[str, TokenTrie] = {}  # grammar text -> its token trie, built once

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto", dtype: str = "auto") -> CausalLMEngine:
        """Load a local checkpoint directory (config, safetensors weights, tokenizer, template).

        ``device``: "auto" | "cpu" | "cuda[:i]"; ``dtype``: "auto" | "float32" | "float16" |
        "bfloat16" (resolved for the device by ``resolve_dtype``). Never runs remote code.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        if not (path / "config.json").is_file():
            raise ModelFilesError(f"no causal LM checkpoint at {path} (config.json missing)")
        device = resolve_device(device)
        with loading_progress(False):
            model = AutoModelForCausalLM.from_pretrained(
                path, dtype=resolve_dtype(dtype, device), local_files_only=True,
                use_safetensors=True, trust_remote_code=False)
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True,
                                                      trust_remote_code=False)
        if tokenizer.chat_template is None:
            raise ModelFilesError(f"tokenizer at {path} has no chat template")
        if tokenizer.pad_token_id is None:  # Llama-3 ships none; pads are masked out anyway
            tokenizer.pad_token = tokenizer.eos_token
        engine = cls(model.to(device).eval(), tokenizer, device)
        engine._render_chat(PROBE_CHAT)  # a template that cannot render fails here, not later
        return engine

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes as message content (no BOS, no chat-template tokens)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, messages: list[dict], n: int, seed: int, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int = 128,
                 grammar: str | None = None) -> list[str]:
        """Sample ``n`` assistant replies to ``messages`` ({"role", "content"} dicts) in one batch.

        The same ``(messages, n, seed)`` and settings give the same strings on the same device.
        ``temperature == 0`` decodes greedily and returns ``n`` copies of that reply. Returns the
        new text only, special tokens skipped, whitespace stripped. Other sampling settings
        (e.g. ``top_k``) come from the checkpoint's ``generation_config.json``. ``grammar``: a
        finite GBNF grammar (``t2i_engines.finite_grammar``); every reply is one of its
        sentences (or a prefix of one, if ``max_new_tokens`` runs out first).
        """
        import torch

        if n < 0 or temperature < 0 or not 0 < top_p <= 1 or max_new_tokens < 1:
            raise EngineSettingsError(f"bad generation settings: n={n}, temperature={temperature}, "
                             f"top_p={top_p}, max_new_tokens={max_new_tokens}")
        if n == 0:
            return []
        text, inputs = self._encode_chat(messages)
        greedy = temperature == 0
        sampling = ({"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
                    if greedy else {"do_sample": True, "temperature": temperature, "top_p": top_p})
        if grammar is not None:
            sampling["prefix_allowed_tokens_fn"] = self._trie(grammar, text).prefix_fn(
                inputs["input_ids"].shape[1])
        with torch.inference_mode(), _seeded_rng(seed, self.device):
            out = self.model.generate(
                **inputs, num_return_sequences=1 if greedy else n,
                max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
                **sampling)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        decoded = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        texts = [t.strip() for t in decoded]
        return texts * n if greedy else texts

    def _trie(self, grammar: str, prompt_text: str) -> TokenTrie:
        """The grammar's token trie (built once), checked against this prompt's ending."""
        try:
            if grammar not in self._tries:
                self._tries[grammar] = TokenTrie(grammar, self.tokenizer, self._eos_ids())
            self._tries[grammar].check_boundary(prompt_text)
        except GrammarError as exc:
            raise EngineSettingsError(f"cannot decode under this grammar: {exc}") from exc
        return self._tries[grammar]

    def _eos_ids(self) -> list[int]:
        """Ids that end generation: the generation config's, else the tokenizer's EOS."""
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return [i for i in (eos if isinstance(eos, list) else [eos]) if i is not None]

    def _encode_chat(self, messages: list[dict]) -> tuple[str, dict[str, torch.Tensor]]:
        """The rendered chat and its tokens as-is (the template writes its own BOS)."""
        if not messages:
            raise EngineSettingsError("messages must not be empty")
        text = self._render_chat(messages)
        enc = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")
        return text, {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask")}

    def _render_chat(self, messages: list[dict]) -> str:
        """The chat template applied to ``messages``. transformers renders it in a Jinja
        sandbox; a template the sandbox blocks (``SecurityError``), that does not compile, that
        raises, or that breaks on these messages is the model files' fault: one-line
        :class:`ModelFilesError` naming the checkpoint."""
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=True)
        except Exception as exc:  # whatever a template raises, the template is at fault
            name = getattr(self.tokenizer, "name_or_path", "") or "the tokenizer"
            raise ModelFilesError(template_error(name, exc)) from exc


# The kinds of turn the rewriter and the planner send: a template must render them at load.
PROBE_CHAT = [{"role": "system", "content": "You rewrite prompts."},
              {"role": "user", "content": "a cat"},
              {"role": "assistant", "content": "a photo of a cat"},
              {"role": "user", "content": "a dog"}]


def template_error(name, exc: BaseException) -> str:
    """One line: whose chat template failed, and how."""
    lines = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return f"the chat template of {name} cannot render a chat ({detail})"


@contextmanager
def _seeded_rng(seed: int, device: str) -> Iterator[None]:
    """Seed torch's global RNG for one call and restore the caller's state afterwards.

    ``generate`` samples from the global generator (it takes no ``generator=``), so fork it.
    """
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index
        fork = torch.random.fork_rng(
            devices=[torch.cuda.current_device() if index is None else index], device_type="cuda")
    else:
        fork = torch.random.fork_rng(devices=[])
    with fork:
        torch.manual_seed(seed)
        yield
