"""Bundle → stages: pick each component's engine from ``bundle.json`` and wrap it in its stage.

Engines are imported here, lazily, so ``import t2i_sdk`` stays free of torch.
Mixing engines works: each component loads on its own (e.g. a GGUF rewriter + torch drafter).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from t2i_engines.errors import EngineError
from t2i_engines.threads import CpuThreads, default_threads
from t2i_engines.threads import configure as configure_threads
from t2i_sdk.budget import CostCache
from t2i_sdk.bundle import component_dir, load_bundle
from t2i_sdk.bundle.hashing import resolve_member
from t2i_sdk.bundle.options import engine_kwargs
from t2i_sdk.bundle.safetensors_header import read_safetensors_header
from t2i_sdk.bundle.staging import staged_component
from t2i_sdk.config import PipelineConfig, RewriteConfig, config_from_options
from t2i_sdk.errors import BundleError, InputError
from t2i_sdk.planning.box_geometry import GeometryConfig


def engine_options(entry) -> dict:
    """The part of a component's options its engine's ``load`` takes (see bundle/options.py)."""
    return engine_kwargs(entry.role, entry.options)


def _torch_gligen(path, entry, device):
    from t2i_engines.pytorch.gligen_drafter import GligenDrafterEngine
    from t2i_sdk.stages.draft import LayoutDrafter
    return LayoutDrafter(GligenDrafterEngine.load(path, device=device, dtype=entry.dtype,
                                                  **engine_options(entry)))


def _torch_clip(path, entry, device):
    from t2i_engines.pytorch.clip_scorer import ClipScorerEngine
    return ClipScorerEngine.load(path, device=device, dtype=entry.dtype)


def _torch_img2img(path, entry, device):
    from t2i_engines.pytorch.img2img_refiner import Img2ImgRefinerEngine
    return Img2ImgRefinerEngine.load(path, device=device, dtype=entry.dtype,
                                     **engine_options(entry))


def _torch_causal_lm(path, entry, device):
    from t2i_engines.pytorch.causal_lm import CausalLMEngine
    return CausalLMEngine.load(path, device=device, dtype=entry.dtype)


# Exported graphs run on onnxruntime or, for engine "tensorrt", on the .plan files beside them.
def _ort_gligen(path, entry, device):
    from t2i_engines.onnxruntime.gligen_drafter import OrtGligenDrafterEngine
    from t2i_sdk.stages.draft import LayoutDrafter
    return LayoutDrafter(OrtGligenDrafterEngine.load(path, device=device, dtype=entry.dtype,
                                                     runtime=entry.engine, **engine_options(entry)))


def _ort_clip(path, entry, device):
    from t2i_engines.onnxruntime.clip_scorer import OrtClipScorerEngine
    return OrtClipScorerEngine.load(path, device=device, dtype=entry.dtype, runtime=entry.engine)


def _ort_img2img(path, entry, device):
    from t2i_engines.onnxruntime.img2img_refiner import OrtImg2ImgRefinerEngine
    return OrtImg2ImgRefinerEngine.load(path, device=device, dtype=entry.dtype,
                                        runtime=entry.engine, **engine_options(entry))


def _llamacpp_causal_lm(path, entry, device):
    from t2i_engines.llamacpp.causal_lm import LlamaCppEngine
    # The planner decodes under the layout grammar, so its reply always parses.
    schema = None
    if entry.role == "planner":
        from t2i_sdk.planning.layout_schema import LAYOUT_JSON_SCHEMA
        schema = LAYOUT_JSON_SCHEMA
    return LlamaCppEngine.load(path, device=device, json_schema=schema)


# (engine, kind) -> loader(component_path, entry, device)
LOADERS: dict[tuple[str, str], Callable] = {
    ("torch", "gligen"): _torch_gligen,
    ("torch", "clip"): _torch_clip,
    ("torch", "img2img"): _torch_img2img,
    ("torch", "causal-lm"): _torch_causal_lm,
    ("onnxruntime", "gligen"): _ort_gligen,
    ("onnxruntime", "clip"): _ort_clip,
    ("onnxruntime", "img2img"): _ort_img2img,
    ("tensorrt", "gligen"): _ort_gligen,
    ("tensorrt", "clip"): _ort_clip,
    ("tensorrt", "img2img"): _ort_img2img,
    ("llama.cpp", "causal-lm"): _llamacpp_causal_lm,
}


def load_component(bundle_dir: Path, entry, device: str):
    """The stage object for one bundle component, on the engine its entry names.

    The engine reads a private staging folder holding only the files ``bundle.json`` lists
    for the component (see ``t2i_sdk.bundle.staging``), removed once it is loaded. Any
    failure to load is a ``BundleError`` naming the component and the bundle path.
    """
    loader = LOADERS.get((entry.engine, entry.kind))
    if loader is None:
        raise BundleError(f"component {entry.role!r}: no engine for kind {entry.kind!r} on "
                          f"engine {entry.engine!r} in this install")
    path = component_dir(bundle_dir, entry)
    staged = None
    try:
        for rel in entry.files:  # a rehashed manifest can vouch for a corrupt file
            if rel.endswith(".safetensors"):
                read_safetensors_header(resolve_member(path, rel))
        with staged_component(path, entry.files) as staged:
            return loader(staged, entry, device)
    except ImportError as exc:  # an engine's optional dependency is not installed
        raise BundleError(f"component {entry.role!r} needs {exc.name or exc}: install the extra for "
                          f"engine {entry.engine!r} (see README)") from exc
    except load_errors() as exc:  # unreadable or corrupt files, mismatched engines
        detail = _one_line(exc, staged, path)
        raise BundleError(f"component {entry.role!r} at {path}: {detail}") from exc


def load_errors() -> tuple[type[BaseException], ...]:
    """What loaders raise for files they cannot use: corrupt, truncated or mismatched.

    Beyond ``OSError``/``ValueError``: ``KeyError`` (a field missing from a JSON config),
    ``RuntimeError`` (torch: weights whose shapes don't fit the config) and safetensors'
    ``SafetensorError``, which derives from ``Exception`` only.
    """
    errors = [EngineError, OSError, ValueError, KeyError, RuntimeError]
    try:
        from safetensors import SafetensorError
        errors.append(SafetensorError)
    except ImportError:  # no torch extra installed: nothing loads safetensors
        pass
    return tuple(errors)


def _one_line(exc: BaseException, staged: Path | None, path: Path) -> str:
    """``exc`` as one line, the staging folder shown as the bundle's component folder."""
    text = str(exc) or type(exc).__name__
    if staged is not None:
        text = text.replace(str(staged), str(path))
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if isinstance(exc, (OSError, ValueError, EngineError)):
        return first
    return f"{type(exc).__name__}: {first}"  # KeyError('x') alone would say only 'x'


def _pipeline_config(manifest, config: PipelineConfig | None) -> PipelineConfig:
    """The bundle's pipeline settings (options were type-checked when bundle.json was read)."""
    if config is not None:
        return config
    fields = {}
    layout = manifest.components["drafter"].options.get("layout")
    if layout is not None:
        fields["layout"] = _config("drafter option 'layout'", GeometryConfig, layout)
    if "lam" in manifest.components["scorer"].options:
        fields["lam"] = manifest.components["scorer"].options["lam"]
    if "refiner" in manifest.components:
        opts = manifest.components["refiner"].options
        fields.update({k: opts[k] for k in ("refine_strength", "refine_steps", "round_gains")
                       if k in opts})
    if "rewriter" in manifest.components:
        fields["rewrite"] = _config("rewriter options", RewriteConfig,
                                    manifest.components["rewriter"].options)
    try:
        return PipelineConfig(**fields)
    except ValueError as exc:
        raise BundleError(f"scorer or refiner options: {exc}") from exc


def _config(what: str, cls, options):
    if not isinstance(options, dict):
        raise BundleError(f"{what} must be an object, got {options!r}")
    try:
        return config_from_options(cls, options)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{what}: {exc}") from exc


def cpu_thread_settings(threads, spin) -> CpuThreads:
    """``CpuThreads`` from ``from_pretrained``'s arguments, defaults filled in."""
    default = default_threads()
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or not 1 <= threads <= 256):
        raise InputError(f"threads must be an int in [1, 256] or None, got {threads!r}")
    if spin is not None and not isinstance(spin, bool):
        raise InputError(f"spin must be True, False or None, got {spin!r}")
    return CpuThreads(default.threads if threads is None else threads,
                      default.spin if spin is None else spin)


def load_pipeline(cls, path, *, device, config, calibrate, verify, cache_dir, threads=None,
                  spin=None):
    from t2i_sdk.budget.calibrate import calibrate_costs, default_costs, device_name, warm_up
    from t2i_sdk.planning import LLMPlanner, RulePlanner
    from t2i_sdk.stages.rewrite import LLMRewriter

    settings = cpu_thread_settings(threads, spin)
    bundle_dir = Path(path)
    manifest = load_bundle(bundle_dir, verify=verify)
    config = _pipeline_config(manifest, config)
    configure_threads(settings)  # before any engine loads: they read it
    parts = {role: load_component(bundle_dir, entry, device)
             for role, entry in manifest.components.items()}
    rewriter = LLMRewriter(parts["rewriter"], config.rewrite) if "rewriter" in parts else None
    planner = None
    if "planner" in parts:
        options = manifest.components["planner"].options
        planner = LLMPlanner(parts["planner"], system_prompt=options.get("system_prompt"),
                             fallback=RulePlanner(config.layout),
                             prefer_in_auto=options.get("prefer_in_auto", False))
    pipe = cls(parts["drafter"], parts["scorer"], refiner=parts.get("refiner"),
               llm_rewriter=rewriter, llm_planner=planner, config=config)

    cache = CostCache(Path(cache_dir) if cache_dir else None)
    bundle_id = hashlib.sha256((bundle_dir / "bundle.json").read_bytes()).hexdigest()[:16]
    dev = device_name(device)
    if dev.startswith("cpu"):  # CPU costs depend on the thread settings
        dev += f"-{settings.threads}t" + ("-spin" if settings.spin else "")
    costs = cache.load(bundle_id, dev)
    if costs is None and calibrate:
        costs = calibrate_costs(pipe)
        cache.save(bundle_id, dev, costs)
    elif costs is None:
        costs = default_costs()  # priors only: never cached, so a later load still calibrates
    elif calibrate:
        warm_up(pipe)
    pipe.costs = costs
    pipe.on_costs_updated = lambda model: cache.save(bundle_id, dev, model)
    return pipe
