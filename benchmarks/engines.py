"""Engine latency per component: torch eager vs onnxruntime fp32 / int8 on CPU (+ TensorRT
fp16 on a GPU), and LLM tokens/s: transformers fp32 vs llama.cpp f16 / q8_0 / q4_0 / q4_k.

    python benchmarks/engines.py                    # tiny bundle, batch 1 and 4
    python benchmarks/engines.py --real-size        # real-size random models, 256 px, batch 1
    python benchmarks/engines.py --real-size --resolution 512 --batches 1 4   # GPU machine
    python benchmarks/engines.py --real-size --only refiner --merge   # re-time one family

Graphs come from the real exporters (t2i_export.onnx.*, t2i_export.gguf) and run through the
engines' own runtimes (OrtModel, TrtModel, LlamaCppEngine). Latency is the median of
``--iterations`` calls after ``--warmup`` calls; each case loads its model, is timed at every
batch, and is freed before the next. Writes benchmarks/results/engines[-real-size].{json,png,md}
and prints the table; progress goes to stderr. ``--merge`` keeps the other families' figures
from the existing JSON (it must have the same timing settings) and replaces only this run's.
Figures, not a test: a case that fails is recorded with its error and the others still run.
"""
from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # engine_cases, beside this script

import torch  # noqa: E402
from engine_cases import (FAMILIES, Component, export_drafter, export_refiner,  # noqa: E402
                          export_scorer, drafter_components, llamacpp_decoder, merge_results,
                          prompt_ids, read_for_merge, real_size_sources, refiner_component,
                          scorer_components, tiny_sources, transformers_decoder)
from rich import box  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,  # noqa: E402
                           TextColumn, TimeElapsedColumn)
from rich.table import Table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ENGINES = ("torch", "torch-cuda", "ort-fp32", "ort-int8", "tensorrt-fp16")
GGUF_TYPES = ("f16", "q8_0", "q4_0", "q4_k")
COLORS = {"torch": "#4C72B0", "torch-cuda": "#8172B3", "ort-fp32": "#DD8452",
          "ort-int8": "#55A868", "tensorrt-fp16": "#C44E52", "transformers-fp32": "#4C72B0",
          "llama.cpp-f16": "#DD8452", "llama.cpp-q8_0": "#55A868", "llama.cpp-q4_0": "#937860",
          "llama.cpp-q4_k": "#8172B3"}


@dataclass
class Settings:
    """One run's configuration (recorded in the JSON)."""

    real_size: bool
    families: tuple[str, ...]
    batches: tuple[int, ...]
    resolution: int  # image pixels per side for the diffusion graphs
    warmup: int
    iterations: int
    prompt_tokens: int
    new_tokens: int
    shared_machine: bool
    threads: int  # CPU threads of every engine (torch, onnxruntime, llama.cpp)


def parse_args(argv: list[str] | None) -> tuple[Settings, Path, Path | None, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real-size", action="store_true",
                        help="real-size random models instead of the tiny bundle")
    parser.add_argument("--resolution", type=int, help="image side in pixels (default: 64 tiny, "
                        "256 real-size; 512 is SD 1.5's own, meant for a GPU)")
    parser.add_argument("--batches", type=int, nargs="+",
                        help="batch sizes (default: 1 4 tiny, 1 real-size)")
    parser.add_argument("--warmup", type=int, help="untimed calls first (default 3 / 1)")
    parser.add_argument("--iterations", type=int, help="timed calls (default 20 / 3)")
    parser.add_argument("--only", "--families", nargs="+", choices=FAMILIES,
                        default=list(FAMILIES), help="component families to run")
    parser.add_argument("--merge", action="store_true",
                        help="replace only these families' figures in the existing "
                             "<out-dir>/engines[-real-size].json, keeping the others")
    parser.add_argument("--prompt-tokens", type=int, default=30)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--dedicated-machine", action="store_true",
                        help="nothing else ran meanwhile (else the JSON says it was shared)")
    parser.add_argument("--threads", type=int,
                        help="CPU threads per engine (default: all cores with "
                             "--dedicated-machine, else 1: on a busy machine, multi-threaded "
                             "kernels stall at every barrier on a descheduled thread)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path,
                        help="keep models and exported graphs here (default: a temp dir)")
    args = parser.parse_args(argv)
    real = args.real_size
    settings = Settings(
        real_size=real, families=tuple(f for f in FAMILIES if f in args.only),
        batches=tuple(args.batches or ((1,) if real else (1, 4))),
        resolution=args.resolution or (256 if real else 64),
        warmup=args.warmup if args.warmup is not None else (1 if real else 3),
        iterations=args.iterations or (3 if real else 20), prompt_tokens=args.prompt_tokens,
        new_tokens=args.new_tokens, shared_machine=not args.dedicated_machine,
        threads=args.threads or ((os.cpu_count() or 1) if args.dedicated_machine else 1))
    return settings, args.out_dir, args.work_dir, args.merge


# --- preparing and timing ---------------------------------------------------------------------

def prepare(settings: Settings, work: Path, say) -> tuple[list[Component], Path | None, dict]:
    """Sources + exports -> (components, LLM folder, notes per family)."""
    if settings.real_size:
        sources = real_size_sources(work, settings.families, say)
    else:
        sources = tiny_sources(work, say)
    components: list[Component] = []
    if "drafter" in settings.families and sources.drafter:
        fp32, int8 = export_drafter(sources.drafter, work, say, settings.resolution)
        components += drafter_components(sources.drafter, fp32, int8, settings.resolution)
    if "scorer" in settings.families and sources.scorer:
        components += scorer_components(sources.scorer, *export_scorer(sources.scorer, work, say))
    if "refiner" in settings.families and sources.refiner:
        components.append(refiner_component(
            sources.refiner, export_refiner(sources.refiner, work, say), settings.resolution))
    llm = sources.llm if "llm" in settings.families else None
    return components, llm, {f: n for f, n in sources.notes.items() if f in settings.families}


def measure(call, warmup: int, iterations: int) -> list[float]:
    """Wall-clock ms of ``iterations`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def gpu_status() -> str | None:
    """None when TensorRT can run, else the reason recorded as the rows' status."""
    if not torch.cuda.is_available():
        return "skipped: no GPU"
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "skipped: tensorrt not installed"
    return None


def open_engine(component: Component, engine: str, work: Path, settings: Settings):
    """Load ``component`` on ``engine``; returns ``prepare(feeds) -> call()``. GPU calls
    synchronize, so their wall time is the device time."""
    if engine in ("torch", "torch-cuda"):
        device = "cpu" if engine == "torch" else "cuda"
        module = component.load_torch().to(device)

        def prepare_torch(feeds):
            tensors = [torch.from_numpy(feeds[n]).to(device) for n in component.input_names]

            def call():
                with torch.inference_mode():
                    module(*tensors)
                if device == "cuda":
                    torch.cuda.synchronize()
            return call

        def count_flops(feeds) -> float:
            """FLOPs of one call (torch's FlopCounterMode: matmuls and convolutions, 2 per
            multiply-add; elementwise ops are not counted)."""
            from torch.utils.flop_counter import FlopCounterMode

            tensors = [torch.from_numpy(feeds[n]).to(device) for n in component.input_names]
            counter = FlopCounterMode(display=False)
            with torch.inference_mode(), counter:
                module(*tensors)
            return float(counter.get_total_flops())
        prepare_torch.count_flops = count_flops
        return prepare_torch
    if engine.startswith("ort-"):
        from t2i_engines.onnxruntime.session import OrtModel

        model = OrtModel.load(component.graphs[engine], device="cpu", threads=settings.threads)
        return lambda feeds: (lambda: model.run(feeds))
    from t2i_engines.tensorrt.runtime import TrtModel

    trt_model = TrtModel.load(build_plan(component, work, max(settings.batches)))

    def prepare_trt(feeds):
        tensors = {n: torch.from_numpy(v).cuda() for n, v in feeds.items()}
        return lambda: (trt_model.run_torch(tensors), torch.cuda.synchronize())
    return prepare_trt


def build_plan(component: Component, work: Path, max_batch: int) -> Path:
    """An fp16 TensorRT plan of the fp32 graph, profiled for this run's exact shapes."""
    from t2i_export.tensorrt.build import build_engine, default_profiles

    onnx_path = component.graphs["ort-fp32"]
    rows = component.rows_per_item
    side = component.resolution or 224
    tokens = (77, 77, 77)
    profile = default_profiles(onnx_path, batch=(rows, rows * max_batch, rows * max_batch),
                               resolution=(side, side, side), vae_scale=component.vae_scale,
                               dims={"tokens": tokens, "sequence": tokens})
    return build_engine(onnx_path, work / "trt" / f"{component.name}.plan", fp16=True,
                        profile=profile, timing_cache=work / "trt" / "timing.cache")


def engine_bytes(component: Component, engine: str) -> int | None:
    from t2i_export.onnx.graph import model_files

    if engine.startswith("torch"):
        return component.torch_bytes
    if engine in component.graphs:
        return sum(p.stat().st_size for p in model_files(component.graphs[engine]))
    return None


def time_component(component: Component, settings: Settings, work: Path, log) -> list[dict]:
    """One row per (engine, batch): median/min/max ms, or a skip / error status."""
    engines = ["torch"] + (["torch-cuda"] if torch.cuda.is_available() else [])
    engines += [e for e in ("ort-fp32", "ort-int8") if e in component.graphs] + ["tensorrt-fp16"]
    rows = []
    flops: dict[int, float] = {}  # batch -> FLOPs of one call, counted on the torch module
    for engine in engines:
        base = {"component": component.name, "description": component.description,
                "engine": engine, "device": "cpu" if engine in ("torch", "ort-fp32", "ort-int8")
                else "cuda", "file_mb": _mb(engine_bytes(component, engine))}
        status = gpu_status() if engine == "tensorrt-fp16" else None
        prepare_feeds = None
        if status is None:
            try:
                prepare_feeds = open_engine(component, engine, work, settings)
            except Exception as exc:  # a figure missing beats a run lost
                status = _error(exc, log)
        for batch in settings.batches:
            row = {**base, "batch": batch, "rows": batch * component.rows_per_item,
                   "status": status or "ok", "median_ms": None, "min_ms": None, "max_ms": None,
                   "iterations": 0}
            if status is None:
                try:
                    feeds = component.feeds(batch)
                    times = measure(prepare_feeds(feeds), settings.warmup, settings.iterations)
                    row.update(median_ms=statistics.median(times), min_ms=min(times),
                               max_ms=max(times), iterations=len(times),
                               load_average=[round(x, 2) for x in os.getloadavg()])
                    if hasattr(prepare_feeds, "count_flops") and batch not in flops:
                        flops[batch] = prepare_feeds.count_flops(feeds)
                    if batch in flops:
                        row.update(gflop=round(flops[batch] / 1e9, 6), gflop_per_s=round(
                            flops[batch] / 1e9 / (row["median_ms"] / 1e3), 3))
                except Exception as exc:
                    row["status"] = _error(exc, log)
            rows.append(row)
        del prepare_feeds
        gc.collect()
    return rows


def time_llm(src: Path, settings: Settings, work: Path, log, advance) -> list[dict]:
    """transformers fp32 and llama.cpp per GGUF type: the same prompt ids, greedy, no early
    stop. Each GGUF file is converted right before it is timed."""
    from t2i_export.gguf.convert import convert_to_gguf

    prompt = prompt_ids(src, settings.prompt_tokens)
    rows = []
    threads = settings.threads
    for engine in ("transformers-fp32", *(f"llama.cpp-{t}" for t in GGUF_TYPES)):
        row = {"engine": engine, "status": "ok", "threads": threads, "file_mb": None}
        try:
            if engine == "transformers-fp32":
                row["file_mb"] = _mb(sum(p.stat().st_size for p in src.glob("*.safetensors")))
                run = transformers_decoder(src)
            else:
                gguf = convert_to_gguf(src, work / "gguf" / f"{engine}.gguf",
                                       out_type=engine.rsplit("-", 1)[1])
                row["file_mb"] = _mb(gguf.stat().st_size)
                run = llamacpp_decoder(gguf, threads)
            row.update(_decode_figures(run, prompt, settings))
        except Exception as exc:
            row["status"] = _error(exc, log)
        rows.append(row)
        run = None
        gc.collect()
        advance()
    return rows


def _decode_figures(run, prompt: list[int], settings: Settings) -> dict:
    for _ in range(settings.warmup):
        run(prompt, settings.new_tokens)
    runs = [run(prompt, settings.new_tokens) for _ in range(settings.iterations)]
    prefill = statistics.median(p for p, _ in runs)
    total = statistics.median(t for _, t in runs)
    decode = statistics.median(t - p for p, t in runs)
    return {"prefill_ms": prefill * 1e3, "total_ms": total * 1e3,
            "tokens_per_s": settings.new_tokens / total,
            "decode_tokens_per_s": (settings.new_tokens - 1) / decode,
            "iterations": len(runs)}


def _mb(n: int | None) -> float | None:
    return None if n is None else round(n / 2**20, 2)


def _error(exc: Exception, log) -> str:
    log(traceback.format_exc())
    return f"error: {type(exc).__name__}: {str(exc)[:300]}"


# --- machine and output -----------------------------------------------------------------------

def machine_info(settings: Settings, load_start: tuple) -> dict:
    cpu = platform.processor() or platform.machine()
    memory_gb = None
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
        kb = next(int(line.split()[1]) for line in open("/proc/meminfo")
                  if line.startswith("MemTotal"))
        memory_gb = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "os": platform.platform(), "shared": settings.shared_machine,
            "note": ("other jobs ran on this machine during the benchmark, so figures are "
                     "noisy; compare engines within one run") if settings.shared_machine else "",
            "load_average_start": [round(x, 2) for x in load_start],
            "matmul_peak_gflop_per_s": matmul_peak(settings.threads),
            "load_average_end": [round(x, 2) for x in os.getloadavg()]}


def matmul_peak(threads: int, n: int = 2048, repeats: int = 5) -> dict:
    """This machine's float32 matmul rate on ``threads`` threads: the best of ``repeats``
    n x n x n products (2 n^3 FLOPs each) in torch and numpy, GFLOP/s, with the load then."""
    import numpy as np

    a32 = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    best = {}
    for name, mm, x in (("torch", torch.mm, torch.from_numpy(a32)), ("numpy", np.matmul, a32)):
        mm(x, x)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            mm(x, x)
            seconds.append(time.perf_counter() - start)
        best[name] = round(2 * n**3 / min(seconds) / 1e9, 1)
    return {**best, "n": n, "threads": threads,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def versions() -> dict:
    import diffusers
    import numpy
    import onnx
    import onnxruntime
    import transformers

    found = {"python": platform.python_version(), "torch": torch.__version__,
             "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__,
             "transformers": transformers.__version__, "diffusers": diffusers.__version__,
             "numpy": numpy.__version__, "llama_cpp_python": None, "llama_cpp_system": None,
             "tensorrt": None}
    try:
        import llama_cpp

        found["llama_cpp_python"] = llama_cpp.__version__
        found["llama_cpp_system"] = llama_cpp.llama_print_system_info().decode().strip()
    except ImportError:
        pass
    try:
        import tensorrt

        found["tensorrt"] = tensorrt.__version__
    except ImportError:
        pass
    return found


def component_table(rows: list[dict], title: str, table_box=box.HEAVY_HEAD) -> Table:
    """Median ms per (component, batch) x engine; speed-up vs torch CPU in parentheses."""
    engines = [e for e in ENGINES if any(r["engine"] == e for r in rows)]
    table = Table(title=title, box=table_box)
    for name in ("component", "batch", *engines):
        table.add_column(name, justify="left" if name == "component" else "right")
    for key in dict.fromkeys((r["component"], r["batch"]) for r in rows):
        cells = {r["engine"]: r for r in rows if (r["component"], r["batch"]) == key}
        base = (cells.get("torch") or {}).get("median_ms")
        table.add_row(key[0], str(key[1]), *(_cell(cells.get(e), base) for e in engines))
    return table


def _cell(row: dict | None, base: float | None) -> str:
    if row is None:
        return "-"
    if row["median_ms"] is None:
        return row["status"].split(":")[0] if row["status"].startswith("error") else \
            row["status"].removeprefix("skipped: ")
    text = f"{row['median_ms']:.1f} ms" if row["median_ms"] >= 1 else \
        f"{row['median_ms']:.2f} ms"
    if base and row["engine"] != "torch":
        text += f" ({base / row['median_ms']:.1f}x)"
    return text


def llm_table(rows: list[dict], title: str, table_box=box.HEAVY_HEAD) -> Table:
    table = Table(title=title, box=table_box)
    for name in ("engine", "file MB", "prefill ms", "tokens/s", "decode tokens/s"):
        table.add_column(name, justify="left" if name == "engine" else "right")
    for r in rows:
        if r["status"] != "ok":
            table.add_row(r["engine"], _fmt(r["file_mb"]), r["status"][:40], "-", "-")
            continue
        table.add_row(r["engine"], _fmt(r["file_mb"]), _fmt(r["prefill_ms"]),
                      _fmt(r["tokens_per_s"]), _fmt(r["decode_tokens_per_s"]))
    return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def write_outputs(result: dict, stem: Path) -> tuple[str, Path, Path]:
    """JSON + markdown tables + PNG chart at ``stem.*``; returns the markdown text."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    buffer = io.StringIO()
    console = Console(file=buffer, width=400, color_system=None)
    if result["components"]:
        console.print(component_table(result["components"], "", box.MARKDOWN))
    if result["llm"]:
        console.print(llm_table(result["llm"], "", box.MARKDOWN))
    markdown = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
    stem.with_suffix(".md").write_text(markdown)
    draw_chart(result, stem.with_suffix(".png"))
    return markdown, stem.with_suffix(".json"), stem.with_suffix(".png")


# --- chart (PIL: matplotlib is not a dependency) ----------------------------------------------

BAR_AREA, LABEL_W, BAR_H, GAP = 560, 170, 18, 4


def draw_chart(result: dict, path: Path) -> Path:
    """Grouped horizontal bars: one group per (component, batch) with median ms per engine
    (shorter is faster), then one LLM group with tokens/s (longer is faster). Each group is
    scaled to its own largest bar; the figure is written next to each bar."""
    from PIL import Image, ImageDraw, ImageFont

    groups = []
    for key in dict.fromkeys((r["component"], r["batch"]) for r in result["components"]):
        bars = [(r["engine"], r["median_ms"], _bar_label(r)) for r in result["components"]
                if (r["component"], r["batch"]) == key]
        groups.append((f"{key[0]}, batch {key[1]}: median ms (shorter is faster)", bars))
    if result["llm"]:
        groups.append(("LLM: tokens/s (longer is faster), file size",
                       [(r["engine"], r.get("tokens_per_s"), _llm_label(r))
                        for r in result["llm"]]))
    font = ImageFont.load_default(size=13)
    title_font = ImageFont.load_default(size=16)
    height = 70 + sum(26 + len(bars) * (BAR_H + GAP) + 12 for _, bars in groups)
    image = Image.new("RGB", (LABEL_W + BAR_AREA + 260, height), "white")
    draw = ImageDraw.Draw(image)
    machine = result["machine"]
    draw.text((10, 10), f"t2i engines benchmark ({result['mode']})", fill="black",
              font=title_font)
    draw.text((10, 34), f"{machine['cpu']}, {machine['cores']} cores"
              + (f", {machine['gpu']}" if machine["gpu"] else "")
              + (" (shared machine)" if machine["shared"] else ""), fill="#555555", font=font)
    y = 70
    for title, bars in groups:
        draw.text((10, y), title, fill="black", font=font)
        y += 26
        top = max((v for _, v, _ in bars if v), default=1.0)
        for engine, value, label in bars:
            draw.text((20, y + 2), engine, fill="black", font=font)
            width = max(2, int(BAR_AREA * value / top)) if value else 0
            if width:
                draw.rectangle((LABEL_W, y, LABEL_W + max(width, 2), y + BAR_H),
                               fill=COLORS.get(engine, "#888888"))
            draw.text((LABEL_W + width + 6, y + 2), label, font=font,
                      fill="black" if value else "#999999")
            y += BAR_H + GAP
        y += 12
    image.save(path)
    return path


def _bar_label(row: dict) -> str:
    if row["median_ms"] is None:
        return row["status"][:60]
    return f"{row['median_ms']:.2f} ms" if row["median_ms"] < 10 else f"{row['median_ms']:.0f} ms"


def _llm_label(row: dict) -> str:
    mb = row.get("file_mb")
    size = "" if mb is None else f", {mb:.0f} MB" if mb >= 10 else f", {mb:.2g} MB"
    if row["status"] != "ok":
        return row["status"][:60] + size
    return f"{row['tokens_per_s']:.1f} tok/s{size}"


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns the result dict also written to ``<out-dir>/engines*.json``."""
    settings, out_dir, work_dir, merge = parse_args(argv)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _run(settings, out_dir, work_dir, merge)
    finally:
        torch.set_num_threads(threads_before)


def _run(settings: Settings, out_dir: Path, work_dir: Path | None, merge: bool) -> dict:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    stem = out_dir / ("engines-real-size" if settings.real_size else "engines")
    earlier = read_for_merge(stem.with_suffix(".json"), asdict(settings)) if merge else None

    for library in (diffusers_logging, transformers_logging):  # per-file bars would
        library.disable_progress_bar()  # interleave with ours on stderr
    load_start = os.getloadavg()
    err = Console(stderr=True)
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=err)
    with tempfile.TemporaryDirectory(prefix="t2i-bench-engines-") as tmp, progress:
        work = Path(work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        task = progress.add_task("preparing models", total=None)

        def say(message: str) -> None:
            progress.update(task, description=message[:90])

        components, llm, notes = prepare(settings, work, say)
        steps = len(components) + (len(GGUF_TYPES) + 1 if llm else 0)
        progress.update(task, total=steps, completed=0)
        rows = []
        for component in components:
            say(f"timing {component.name}")
            rows += time_component(component, settings, work, err.print)
            progress.advance(task)
        say("timing the LLM")
        llm_rows = time_llm(llm, settings, work, err.print,
                            lambda: progress.advance(task)) if llm else []
        say("done")
    result = {"benchmark": "engines", "mode": "real-size" if settings.real_size else "tiny",
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "machine": machine_info(settings, load_start), "versions": versions(),
              "settings": {**asdict(settings),
                           "text_tokens": 77, "cfg_rows_per_item": {"drafter.unet": 2},
                           "llm_loop": "greedy argmax with KV cache; prefill, then one token "
                                       "per call; end-of-sequence does not stop it"},
              "models": notes, "components": rows, "llm": llm_rows}
    if earlier is not None:
        result = merge_results(earlier, result)
        rows, llm_rows = result["components"], result["llm"]
    _, json_path, png_path = write_outputs(result, stem)
    console = Console(width=max(Console().width, 150))
    if rows:
        console.print(component_table(rows, f"{result['mode']}: median latency, "
                                            "speed-up vs torch CPU"))
    if llm_rows:
        console.print(llm_table(llm_rows, f"{result['mode']}: LLM, {settings.prompt_tokens}-"
                                          f"token prompt, {settings.new_tokens} new tokens"))
    console.print(f"wrote {json_path} and {png_path}")
    return result


if __name__ == "__main__":
    main()
