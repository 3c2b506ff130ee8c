"""Settings of an iterative DPO run (arXiv 2510.12041), loaded from YAML.

Defaults follow the paper: β = 0.1, lr = 5e-6, LoRA r = 64, batch 256, n = 5 rewrites sampled
at temperature 1.5, 6 rounds. A YAML file mirrors the dataclasses: top-level keys of
:class:`RunConfig` plus the sections ``lora:``, ``dpo:``, ``sampling:`` and ``judge:``.
"""
from __future__ import annotations

import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path

from t2i_sdk.config import RewriteConfig
from t2i_sdk.errors import InputError
from t2i_sdk.shapes.caption_grammar import caption_grammar

from t2i_training.data import BUILTIN_PREFIX

from t2i_training.judges.protocol import REWARD_DIMENSIONS
from t2i_training.preferences import TIE_BREAKS

QUANTIZATION_MODES = ("auto", "nf4", "none")
JUDGE_KINDS = ("programmatic", "shapes", "vlm", "http", "import")
# The paper's "general" rewriter; add "aesthetics" for its aesthetics rewriter (which trades
# alignment for looks, Table 1).
DEFAULT_DIMENSIONS = ("quality", "general_alignment", "physical_alignment")
# rewrite.grammar: builtin:NAME -> the GBNF text (the shapes drafter's caption templates).
BUILTIN_GRAMMARS = {"shapes_captions": caption_grammar}
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    r: int = 64
    alpha: int = 128
    dropout: float = 0.05
    target_modules: tuple[str, ...] = LLAMA_PROJECTIONS  # attention q/k/v/o + MLP projections


@dataclass(frozen=True)
class DPOSettings:
    beta: float = 0.1
    learning_rate: float = 5e-6
    batch_size: int = 256  # pairs per optimizer step, reached by gradient accumulation
    micro_batch_size: int = 4  # pairs per forward pass
    epochs: float = 1.0  # passes over one round's pairs
    max_length: int = 512  # tokens of prompt + completion
    gradient_checkpointing: bool = True
    # TRL disables dropout so policy and reference log-probs are comparable; LoRA dropout then
    # only matters if the adapter is trained further elsewhere.
    disable_dropout: bool = True


@dataclass(frozen=True)
class SamplingSettings:
    n_rewrites: int = 5  # n candidates per prompt: n(n−1) ordered pairs judged per dimension
    temperature: float = 1.5  # high temperature for diverse candidates (paper §4)
    top_p: float = 1.0
    max_new_tokens: int = 160  # cap: the paper sees rewrites grow from ~15 to 100+ tokens


@dataclass(frozen=True)
class JudgeSpec:
    """Which :class:`PairwiseJudge` to build (see ``rounds.build_judge``).

    ``kind="programmatic"``: ``ProgrammaticJudge`` around the function named ``prefer`` in
    :mod:`t2i_training.judges.programmatic`. ``"shapes"``: ``ShapesJudge(**options)``, the
    shapes world's detector + GenEval rules on each image against the user's prompt (needs
    shapes-world prompts and ``render: true``). ``"vlm"`` / ``"http"``: ``VLMJudge(**options)`` /
    ``HTTPJudge(**options)``. ``"import"``: call ``target`` (``"package.module:factory"``) with
    ``options`` as keyword arguments.
    """

    kind: str = "programmatic"
    prefer: str = "keeps_objects_adds_color"
    target: str = ""
    options: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "JudgeSpec":
        """The CLI's ``--judge``: ``programmatic:FUNCTION``, ``shapes``, ``vlm:MODEL_DIR`` or
        ``import:package.module:factory``."""
        kind, _, rest = text.partition(":")
        if kind == "programmatic" and rest:
            return cls(kind=kind, prefer=rest)
        if kind == "shapes" and not rest:
            return cls(kind=kind)
        if kind == "vlm" and rest:
            return cls(kind=kind, options={"model_dir": rest})
        if kind == "import" and ":" in rest:
            return cls(kind=kind, target=rest)
        raise InputError(f"--judge {text!r}: use programmatic:FUNCTION, shapes, vlm:MODEL_DIR "
                         f"or import:package.module:factory")


@dataclass(frozen=True)
class RunConfig:
    """One run. Paths are as given (relative to the working directory)."""

    bundle: str  # T2I bundle that renders every rewrite (frozen during training)
    prompts: str = "builtin:compositional"  # .txt / .jsonl file, or builtin:NAME
    # Held-out prompts from their own file instead of a held_out_fraction split of `prompts`
    # (then all of `prompts` train): for worlds with a fixed split, e.g. builtin:shapes_heldout.
    eval_prompts: str | None = None
    run_dir: str = "runs/dpo"
    base_model: str | None = None  # causal LM folder; None: the bundle's rewriter
    bundle_out: str | None = None  # where the final bundle goes; None: RUN_DIR/final/bundle
    rounds: int = 6
    prompts_per_round: int | None = None  # None: every training prompt each round
    held_out_fraction: float = 0.1  # prompts kept out of training for the round reports
    max_eval_prompts: int = 64
    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS
    render: bool = True  # False: no T2I model; for judges that ignore images (programmatic)
    render_steps: int = 20  # drafter steps per render; ONE seed per prompt across rewrites
    quantization: str = "auto"  # "nf4" (QLoRA) | "none" (LoRA) | "auto": nf4 where it runs
    device: str = "auto"
    seed: int = 0
    # How a prompt's tied best (and tied worst) rewrites are narrowed to one pair:
    # "random" (a seeded draw) or "shorter" (shortest chosen, longest rejected, then the draw).
    tie_break: str = "random"
    # Preference pairs DPO gets per prompt: 1 = the paper's (best, worst); more adds other
    # best x worst combinations with different texts (see preferences.ranked_pairs).
    pairs_per_prompt: int = 1
    lora: LoraSettings = field(default_factory=LoraSettings)
    dpo: DPOSettings = field(default_factory=DPOSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    judge: JudgeSpec = field(default_factory=JudgeSpec)
    # The deployed rewriter's chat (system prompt, few-shot examples), sampling for held-out
    # evaluation, and where layouts are planned from: training renders and samples with these,
    # and the final bundle's rewriter options are exactly these.
    rewrite: RewriteConfig = field(default_factory=RewriteConfig)

    def __post_init__(self):
        _check(self.rounds >= 1, "rounds must be >= 1")
        _check(self.quantization in QUANTIZATION_MODES,
               f"quantization must be one of {', '.join(QUANTIZATION_MODES)}, "
               f"got {self.quantization!r}")
        bad = [d for d in self.dimensions if d not in REWARD_DIMENSIONS]
        _check(not bad and self.dimensions,
               f"dimensions {bad or '[]'}: choose from {', '.join(REWARD_DIMENSIONS)}")
        _check(0.0 <= self.held_out_fraction < 1.0, "held_out_fraction must be in [0, 1)")
        _check(self.render_steps >= 1, "render_steps must be >= 1")
        _check(self.tie_break in TIE_BREAKS,
               f"tie_break must be one of {', '.join(TIE_BREAKS)}, got {self.tie_break!r}")
        _check(self.pairs_per_prompt >= 1, "pairs_per_prompt must be >= 1")
        _check(self.sampling.n_rewrites >= 2, "sampling.n_rewrites must be >= 2 (pairs)")
        _check(self.sampling.temperature > 0, "sampling.temperature must be > 0")
        _check(self.sampling.max_new_tokens >= 1, "sampling.max_new_tokens must be >= 1")
        _check(self.dpo.beta > 0 and self.dpo.learning_rate > 0,
               "dpo.beta and dpo.learning_rate must be > 0")
        _check(self.dpo.batch_size >= 1 and self.dpo.micro_batch_size >= 1,
               "dpo.batch_size and dpo.micro_batch_size must be >= 1")
        _check(self.lora.r >= 1, "lora.r must be >= 1")
        _check(self.judge.kind in JUDGE_KINDS,
               f"judge.kind must be one of {', '.join(JUDGE_KINDS)}, got {self.judge.kind!r}")
        _check(self.render or self.judge.kind != "shapes",
               "judge.kind shapes scores the rendered images: render must be true")

    def to_dict(self) -> dict:
        return asdict(self)


def _check(ok, message: str) -> None:
    if not ok:
        raise InputError(message)


def load_config(path: str | Path, **overrides) -> RunConfig:
    """Read a YAML run file. Unknown keys and wrong types raise ``InputError`` naming the key.

    ``overrides`` replace top-level keys (e.g. ``run_dir`` from the command line).
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read config: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of settings at the top level")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(data, where=str(path))


def config_from_dict(data: dict, where: str = "config") -> RunConfig:
    """Build a :class:`RunConfig` from plain data, checking every key and type."""
    rewrite = data.get("rewrite")
    if isinstance(rewrite, dict) and isinstance(rewrite.get("grammar"), str):
        data = {**data, "rewrite": {**rewrite, "grammar": resolve_grammar(rewrite["grammar"],
                                                                          where)}}
    return _build(RunConfig, data, where, prefix="")


def resolve_grammar(spec: str, where: str = "config") -> str:
    """GBNF text as given, or ``builtin:NAME`` for a shipped grammar (``BUILTIN_GRAMMARS``)."""
    if not spec.startswith(BUILTIN_PREFIX):
        return spec
    name = spec[len(BUILTIN_PREFIX):]
    if name not in BUILTIN_GRAMMARS:
        raise InputError(f"{where}: rewrite.grammar: no built-in grammar {name!r} "
                         f"(have: {', '.join(BUILTIN_GRAMMARS)})")
    return BUILTIN_GRAMMARS[name]()


def _build(cls, data, where: str, prefix: str):
    if not isinstance(data, dict):
        raise InputError(f"{where}: {prefix.rstrip('.') or 'config'} must be a mapping")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            raise InputError(f"{where}: unknown key {prefix}{key!r} "
                             f"(known: {', '.join(known)})")
    kwargs = {}
    for name, f in known.items():
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], where, prefix + name)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise InputError(f"{where}: missing required key {prefix}{name!r}")
    return cls(**kwargs)


def _coerce(typ, value, where: str, key: str):
    """Check ``value`` against the annotation ``typ``; return it in the dataclass's form."""
    if is_dataclass(typ):
        return _build(typ, value, where, prefix=key + ".")
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, where, key)
    if origin is tuple:
        item = args[0] if args else str
        if typing.get_origin(item) is tuple:  # e.g. few-shot (request, rewrite) pairs
            if not isinstance(value, list | tuple):
                raise InputError(f"{where}: {key} must be a list, got {value!r}")
            return tuple(_coerce(item, v, where, f"{key}[{i}]") for i, v in enumerate(value))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{where}: {key} must be a list of strings, got {value!r}")
        if Ellipsis not in args and args and len(value) != len(args):
            raise InputError(f"{where}: {key} must hold {len(args)} strings, got {value!r}")
        return tuple(value)
    if typ is float and isinstance(value, str):
        try:  # YAML 1.1 reads "5e-6" (no dot) as a string
            value = float(value)
        except ValueError:
            pass
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str),
          dict: lambda v: isinstance(v, dict)}[typ]
    if not ok(value):
        raise InputError(f"{where}: {key} must be {typ.__name__}, got {value!r}")
    return float(value) if typ is float else value
