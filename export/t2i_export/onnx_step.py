"""``t2i-export onnx``: each torch diffusion/CLIP component of a bundle to ONNX graphs."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from t2i_export.atomic_dir import atomic_export_dir
from t2i_export.stamps import is_current, make_stamp, write_stamp
from t2i_sdk.bundle import component_dir, load_bundle
from t2i_sdk.errors import InputError

ONNX_KINDS = ("gligen", "clip", "img2img")  # causal LMs go to GGUF instead


@dataclass(frozen=True)
class OnnxOptions:
    fp16: bool = False  # fp16 weights and activations, fp32 inputs/outputs
    int8: bool = False  # dynamic int8 quantisation of text encoders and CLIP towers (opt-in)
    optimize: bool = True  # onnxruntime offline graph optimisation
    # static QDQ int8 drafter UNet, calibrated on UNet inputs recorded from fp32 drafts (opt-in)
    int8_unet: bool = False

    def __post_init__(self):
        if self.int8_unet and self.fp16:
            raise InputError("--int8-unet quantises the fp32 UNet for the CPU provider; it "
                             "cannot be combined with --fp16 (use one or the other)")

    @property
    def dtype(self) -> str:
        """The manifest dtype: int8 marks any int8 graph (the exporters give int8 precedence)."""
        return "int8" if self.int8 or self.int8_unet else "float16" if self.fp16 else "float32"

    def dtype_for(self, kind: str) -> str:
        """The manifest dtype of one component kind: ``int8_unet`` makes only the GLIGEN
        drafter int8 (the CLIP scorer and img2img refiner stay as the other flags say)."""
        int8 = self.int8 or (self.int8_unet and kind == "gligen")
        return "int8" if int8 else "float16" if self.fp16 else "float32"


def _exporter(kind: str) -> Callable:
    if kind == "clip":
        from t2i_export.onnx.clip_export import export_clip
        return lambda src, out, o, progress, component_options=None: export_clip(
            src, out, fp16=o.fp16, int8=o.int8, optimize=o.optimize, progress=progress)
    if kind == "gligen":
        from t2i_export.onnx.gligen_export import export_gligen

        def gligen(src, out, o, progress, component_options=None):
            calibration = None
            if o.int8_unet:  # calibrate with the bundle's own guidance, size and box geometry
                from t2i_export.onnx.calibration import calibration_settings
                calibration = calibration_settings(component_options)
            return export_gligen(src, out, fp16=o.fp16, int8_text_encoder=o.int8,
                                 int8_unet=o.int8_unet, calibration=calibration,
                                 optimize=o.optimize, regional=is_regional(component_options),
                                 progress=progress)
        return gligen
    if kind == "img2img":
        from t2i_export.onnx.img2img_export import export_img2img
        return lambda src, out, o, progress, component_options=None: export_img2img(
            src, out, fp16=o.fp16, int8_text_encoder=o.int8, optimize=o.optimize, progress=progress)
    raise ValueError(f"no ONNX exporter for kind {kind!r}")


def is_regional(component_options: dict | None) -> bool:
    """Whether a drafter's options ask for regional prompts (its UNet graph then differs);
    ``{}`` asks for the default settings, as the engines read it."""
    from t2i_engines.regional_prompts import RegionalPrompts
    return RegionalPrompts.from_option((component_options or {}).get("regional_prompts")) is not None


def onnx_stamp(files: dict[str, str], options: OnnxOptions, kind: str | None = None,
               component_options: dict | None = None) -> dict:
    """What marks a finished export current. A calibrated int8 UNet also depends on the
    drafter's bundle options (guidance, size, layout shape its calibration inputs), and a
    drafter's UNet graph on whether it takes regional prompts."""
    stamped = asdict(options)
    if not options.int8_unet:
        del stamped["int8_unet"]  # stamps of exports without it stay as they were
    elif kind == "gligen":
        stamped["calibrated_with"] = dict(component_options or {})
    if kind == "gligen" and is_regional(component_options):
        stamped["regional"] = True
    return make_stamp(files, "onnx", stamped)


def export_component_onnx(src_dir: Path, files: dict[str, str], kind: str, out_dir: Path,
                          options: OnnxOptions, *, progress=None,
                          component_options: dict | None = None) -> bool:
    """Export one component into ``out_dir`` unless an identical export is already there.

    ``component_options``: the bundle entry's options (the drafter's guidance, size and layout
    shape the UNet inputs that ``int8_unet`` calibrates on). Returns True if it exported,
    False if it skipped. The folder appears only when complete.
    """
    stamp = onnx_stamp(files, options, kind, component_options)
    if is_current(out_dir, stamp):
        return False
    with atomic_export_dir(out_dir, overwrite=True) as tmp:
        _exporter(kind)(src_dir, tmp, options, progress, component_options=component_options)
        write_stamp(tmp, stamp)
    return True


def export_bundle_onnx(bundle: Path, out: Path, options: OnnxOptions, *, roles=None,
                       log=print, progress=None) -> dict[str, Path]:
    """Export every torch ONNX-able component of ``bundle`` to ``out/<role>/``."""
    manifest = load_bundle(bundle)
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    for role, entry in manifest.components.items():
        if entry.kind not in ONNX_KINDS or (roles and role not in roles):
            continue
        if entry.engine != "torch":
            log(f"{role}: engine {entry.engine!r}, not torch: skipped")
            continue
        exported = export_component_onnx(component_dir(bundle, entry), entry.files, entry.kind,
                                         out / role, options, progress=progress,
                                         component_options=entry.options)
        log(f"{role}: {'exported' if exported else 'unchanged, skipped'} -> {out / role}")
        done[role] = out / role
    return done
