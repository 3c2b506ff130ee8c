"""The LLM rewriter's / planner's chat model on llama.cpp: a GGUF file behind the same small
class as ``t2i_engines.pytorch.causal_lm.CausalLMEngine``.

The chat template comes from the GGUF header (``tokenizer.chat_template``). With a JSON schema
every reply is decoded under llama.cpp's grammar for it, so it always parses as matching JSON.

The context window defaults to the smaller of ``DEFAULT_N_CTX`` and the context the model was
trained with (``<arch>.context_length`` in the header). The llama.cpp model is freed by
:meth:`LlamaCppEngine.close`, when the engine is garbage-collected, or at interpreter exit
before modules are torn down (``Llama.__del__`` running that late fails noisily).
"""
from __future__ import annotations

import weakref
from pathlib import Path

from t2i_engines import threads
from t2i_engines.errors import EngineSettingsError, ModelFilesError
from t2i_engines.llamacpp.gguf_header import GGUFHeaderError, context_length
from t2i_engines.llamacpp.model_params import without_extra_buffer_types
from t2i_engines.llamacpp.sampling import (SamplerChain, SamplingSettings, closing_bias,
                                           json_schema_grammar)
# dtype is accepted for interface parity with the torch engines (and ignored): same names.
from t2i_engines.pytorch.device import DTYPES

# The kinds of turn the rewriter and the planner send: a template must render them at load.
PROBE_CHAT = [{"role": "system", "content": "You rewrite prompts."},
              {"role": "user", "content": "a cat"},
              {"role": "assistant", "content": "a photo of a cat"},
              {"role": "user", "content": "a dog"}]
DEVICES = ("auto", "cuda", "mps", "cpu")
# Context window (prompt + reply, in tokens) when the caller names none; never more than the
# model was trained with.
DEFAULT_N_CTX = 2048
# Extra greedy tokens a grammar may take to finish once max_new_tokens is spent (a few fields
# of one layout object at most); a reply still open after them is returned unfinished.
CLOSING_TOKENS = 256


class LlamaCppEngine:
    """One GGUF chat model in llama.cpp. Build it with :meth:`load`."""

    def __init__(self, llm, device: str, grammar: str | None = None, *,
                 name: str = "the GGUF file"):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = llm
        # Frees the model at close(), at garbage collection or at interpreter exit (atexit
        # runs while llama_cpp's module globals still exist), whichever comes first.
        self._finalizer = weakref.finalize(self, llm.close)
        self.device = device
        self.grammar = grammar
        self.name = name
        self._vocab = llama_vocab(llm)
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelFilesError(f"{name} has no tokenizer.chat_template")
        # Same Jinja environment (a sandbox) and helpers as transformers' apply_chat_template.
        try:
            self._formatter = Jinja2ChatFormatter(
                template, eos_token=self._piece(llm.token_eos()),
                bos_token=self._piece(llm.token_bos()))
        except Exception as exc:  # TemplateSyntaxError and kin: the file's template is at fault
            raise ModelFilesError(template_error(name, exc)) from exc
        self._render_chat(PROBE_CHAT)  # a template the sandbox blocks fails here, not later
        self._closing_bias: dict[int, float] | None = None

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto", dtype: str = "auto",
             json_schema: dict | None = None, n_ctx: int | None = None) -> LlamaCppEngine:
        """Load ``path``: a ``.gguf`` file, or a folder holding exactly one.

        ``device``: "auto" (GPU when this llama.cpp build can offload) | "cpu" | "cuda[:i]" |
        "mps"; on a GPU every layer is offloaded. ``dtype`` is accepted for interface parity and
        ignored: a GGUF file fixes its weight types at export. ``json_schema``: decode every
        reply under its grammar. ``n_ctx``: context window in tokens (prompt + reply); None:
        ``DEFAULT_N_CTX``. Either is capped at the model's trained context length (from the
        GGUF header) when the header gives one.
        """
        import llama_cpp

        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
        gguf_path = find_gguf(Path(path))
        try:
            n_ctx = context_size(n_ctx, context_length(gguf_path))
        except (OSError, GGUFHeaderError) as exc:
            raise ModelFilesError(f"cannot read the GGUF header of {gguf_path}: {exc}") from exc
        device = resolve_device(device)
        gpu_index = int(device.split(":", 1)[1]) if ":" in device else 0
        grammar = json_schema_grammar(json_schema) if json_schema is not None else None
        try:
            with without_extra_buffer_types():
                llm = llama_cpp.Llama(
                    model_path=str(gguf_path), n_ctx=n_ctx,
                    n_gpu_layers=0 if device == "cpu" else -1, main_gpu=gpu_index,
                    logits_all=False, verbose=False, n_threads=threads.current().threads,
                    n_threads_batch=threads.current().threads)  # prompt evaluation, else all
        except (ValueError, RuntimeError) as exc:
            raise ModelFilesError(f"llama.cpp could not load {gguf_path}: {exc}") from exc
        try:
            engine = cls(llm, device, grammar, name=str(gguf_path))
        except ModelFilesError:
            llm.close()
            raise
        if grammar is not None:
            try:
                check_grammar(engine._vocab, grammar)  # fail at load on a bad grammar
            except BaseException:
                engine.close()
                raise
        return engine

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes as message content (no BOS, no chat-template tokens)."""
        self._check_open()
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def generate(self, messages: list[dict], n: int, seed: int, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int = 128,
                 grammar: str | None = None) -> list[str]:
        """Sample ``n`` assistant replies to ``messages`` ({"role", "content"} dicts).

        Reply ``i`` is drawn with seed ``seed + i``, so the same ``(messages, n, seed)`` and
        settings give the same strings on the same build and device. ``temperature == 0``
        decodes greedily and returns ``n`` copies of that reply. Sampling is temperature then
        nucleus (``top_p``) only. Returns the new text, special tokens skipped, whitespace
        stripped. Under a JSON schema, a reply still open after ``max_new_tokens`` is finished
        greedily toward the nearest closing (up to ``CLOSING_TOKENS`` more tokens).
        ``grammar``: GBNF text this call's replies are decoded under instead of the schema's
        (e.g. a rewriter's caption grammar); a reply it leaves open stays open.
        """
        if n < 0 or temperature < 0 or not 0 < top_p <= 1 or max_new_tokens < 1:
            raise EngineSettingsError(
                f"bad generation settings: n={n}, temperature={temperature}, top_p={top_p}, "
                f"max_new_tokens={max_new_tokens}")
        self._check_open()
        if n == 0:
            return []
        if grammar is not None:
            check_grammar(self._vocab, grammar)
        prompt = self._encode_chat(messages)
        if temperature == 0:
            return [self._reply(prompt, SamplingSettings(0.0, 1.0, seed), max_new_tokens,
                                grammar)] * n
        return [self._reply(prompt, SamplingSettings(temperature, top_p, seed + i),
                            max_new_tokens, grammar) for i in range(n)]

    def close(self) -> None:
        """Free the llama.cpp model and context now (instead of at garbage collection or
        exit). Idempotent; the engine cannot generate afterwards."""
        self._finalizer()  # runs llm.close once; later calls do nothing

    @property
    def closed(self) -> bool:
        """True once the llama.cpp model was freed (``close``)."""
        return not self._finalizer.alive

    def __enter__(self) -> LlamaCppEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise EngineSettingsError(f"the llama.cpp model {self.name} is closed")

    def _encode_chat(self, messages: list[dict]) -> list[int]:
        """Render the chat template and tokenise it as-is (the template writes its own BOS)."""
        if not messages:
            raise EngineSettingsError("messages must not be empty")
        text = self._render_chat(messages)
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _render_chat(self, messages: list[dict]) -> str:
        """The GGUF's chat template applied to ``messages``, in llama-cpp-python's Jinja
        sandbox; a template the sandbox blocks (``SecurityError``), that raises or that breaks
        on these messages: one-line :class:`ModelFilesError` naming the file."""
        try:
            return self._formatter(messages=messages).prompt
        except Exception as exc:  # whatever a template raises, the template is at fault
            raise ModelFilesError(template_error(self.name, exc)) from exc

    def _reply(self, prompt: list[int], settings: SamplingSettings, max_new_tokens: int,
               grammar: str | None = None) -> str:
        """One reply; under ``grammar`` if given, else under the schema's grammar (closed
        at the end of the budget, see ``_close_grammar``)."""
        budget = self.llm.n_ctx() - len(prompt)
        if budget < 1:
            raise EngineSettingsError(f"the prompt takes {len(prompt)} tokens; the context "
                                      f"holds {self.llm.n_ctx()}")
        # A fresh evaluation every time: reusing a cached prefix changes batch shapes, and
        # with them the last bits of the logits, so the same seed could give another reply.
        self.llm.reset()
        self.llm.eval(prompt)
        chosen = grammar if grammar is not None else self.grammar
        with SamplerChain(self._vocab, chosen, settings) as chain:
            tokens, finished = self._decode(chain, min(max_new_tokens, budget))
        if grammar is None and self.grammar is not None and not finished and len(tokens) < budget:
            tokens += self._close_grammar(tokens, budget - len(tokens))
        return self._text(tokens).strip()

    def _decode(self, chain: SamplerChain, limit: int) -> tuple[list[int], bool]:
        """Up to ``limit`` tokens; ``finished`` when an end-of-generation token was drawn."""
        import llama_cpp

        tokens: list[int] = []
        while len(tokens) < limit:
            token = chain.sample(self.llm.ctx)
            if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                return tokens, True
            tokens.append(token)
            if len(tokens) < limit:
                self.llm.eval([token])
        return tokens, False

    def _close_grammar(self, tokens: list[int], budget: int) -> list[int]:
        """Greedy tokens that finish the grammar started by ``tokens`` (see ``closing_bias``)."""
        if self._closing_bias is None:
            self._closing_bias = closing_bias(
                [self._piece(i) for i in range(self.llm.n_vocab())], eog_token_ids(self.llm))
        self.llm.eval([tokens[-1]])  # _decode stops before evaluating its last token
        with SamplerChain(self._vocab, self.grammar, None, self._closing_bias,
                          self.llm.n_vocab()) as chain:
            for token in tokens:
                chain.accept(token)
            extra, _ = self._decode(chain, min(CLOSING_TOKENS, budget))
        return extra

    def _piece(self, token: int, special: bool = True) -> str:
        return token_bytes(self._vocab, token, special).decode("utf-8", errors="replace")

    def _text(self, tokens: list[int]) -> str:
        # Join bytes before decoding: one character can span several byte-level tokens.
        raw = b"".join(token_bytes(self._vocab, t, special=False) for t in tokens)
        return raw.decode("utf-8", errors="replace")


def check_grammar(vocab, grammar: str) -> None:
    """Raise :class:`EngineSettingsError` unless llama.cpp can parse ``grammar`` (GBNF)."""
    if not grammar.strip():  # llama.cpp takes an empty grammar as none at all
        raise EngineSettingsError("the grammar is empty")
    try:
        SamplerChain(vocab, grammar, None).close()
    except ValueError as exc:
        raise EngineSettingsError(str(exc)) from exc


def context_size(requested: int | None, trained: int | None) -> int:
    """The context to open: ``requested`` (None or 0: ``DEFAULT_N_CTX``), at most ``trained``
    (the model's trained context length; None when unknown)."""
    if requested is not None and requested < 0:
        raise EngineSettingsError(f"n_ctx must be positive, got {requested}")
    size = requested or DEFAULT_N_CTX
    return min(size, trained) if trained else size


def template_error(name, exc: BaseException) -> str:
    """One line: whose chat template failed, and how."""
    lines = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return f"the chat template of {name} cannot render a chat ({detail})"


def find_gguf(path: Path) -> Path:
    """``path`` if it is a .gguf file, else the single .gguf inside folder ``path``."""
    if path.is_file() and path.suffix == ".gguf":
        return path
    found = sorted(path.glob("*.gguf")) if path.is_dir() else []
    if len(found) != 1:
        raise ModelFilesError(f"expected a .gguf file or a folder with exactly one at {path}, "
                          f"found {len(found)}")
    return found[0]


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when this llama.cpp build can offload to a GPU, else ``"cpu"``."""
    import llama_cpp

    if device.split(":", 1)[0] not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if llama_cpp.llama_supports_gpu_offload() else "cpu"
    return device


def llama_vocab(llm):
    import llama_cpp

    return llama_cpp.llama_model_get_vocab(llm.model)


def eog_token_ids(llm) -> set[int]:
    """Every end-of-generation id (EOS, EOT such as <|eot_id|>, ...) llama.cpp recognises."""
    import llama_cpp

    vocab = llama_vocab(llm)
    return {i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)}


def token_bytes(vocab, token: int, special: bool) -> bytes:
    """Token ``token``'s text as bytes; control tokens are empty unless ``special``."""
    import ctypes

    import llama_cpp

    size = 64
    while True:
        buffer = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, special)
        if n >= 0:
            return buffer.raw[:n]
        size = -n  # the piece needs -n bytes
