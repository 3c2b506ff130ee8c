"""Figures for benchmarks/shapes_table.py: accuracy against wall time, and example images."""
from __future__ import annotations

from pathlib import Path


def scaling_figure(rows: list[dict], path: Path) -> None:
    """GenEval overall vs mean wall ms per prompt: one line per ranking rule over N drafts,
    refinement rounds and budget runs as their own markers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    series: dict[str, list[tuple[float, float, str]]] = {}
    for r in rows:
        label = r["row"].strip()
        if r.get("oracle"):
            key, note = "oracle (any draft correct)", f"N={r['n']}"
        elif label.startswith(("(c)", "(d)")):
            key, note = ("scene-only rank (λ=1)" if r["lam"] == 1.0 else f"hybrid rank λ={r['lam']}"), f"N={r['n']}"
        elif label.startswith("(e)"):
            key, note = f"+ refine (N={r['n']}, λ={r['lam']})", f"R={r['R']}"
        elif "budget_ms" in r:
            key, note = "budget planner", f"{r['budget_ms']:.0f} ms"
        else:
            key, note = label, ""
        series.setdefault(key, []).append((r["mean_ms"], r["overall"], note))
    for key, points in series.items():
        xs, ys, notes = zip(*sorted(points))
        style = {"marker": "o"}
        if key.startswith("oracle"):
            style = {"marker": ".", "linestyle": ":", "color": "gray"}
        elif key == "budget planner":
            style = {"marker": "s", "linestyle": "--", "color": "black"}
        elif key.startswith("(a)") or key.startswith("(b)"):
            style = {"marker": "*", "markersize": 12, "linestyle": "none"}
        ax.plot(xs, ys, label=key, **style)
        for x, y, note in zip(xs, ys, notes):
            if note:
                ax.annotate(note, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("mean wall time per prompt, ms (log)")
    ax.set_ylabel("GenEval-style overall accuracy")
    ax.set_title("Shapes world: accuracy vs inference-time compute")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


SETTINGS = (  # column title, pipeline knobs
    ("plain", {"planner": "none", "n_drafts": 1, "rounds": 0}),
    ("+ layout", {"planner": "rule", "n_drafts": 1, "rounds": 0}),
    ("+ best of 8", {"planner": "rule", "n_drafts": 8, "rounds": 0}),
    ("+ refine R=2", {"planner": "rule", "n_drafts": 8, "rounds": 2, "top_k": 2}),
)


def examples_figure(pipe, captions, judge, path: Path, lam: float, scale: int = 3) -> None:
    """The first held-out prompt of each tag (rows) under each of SETTINGS (columns), same
    seed; a green frame marks an image the detector + GenEval rules judge correct, red not;
    thin cyan boxes are the layout the drafter was given."""
    from PIL import Image, ImageDraw

    firsts = list({c.tag: c for c in reversed(captions)}.values())[::-1]
    side, pad, text_w, head = 64 * scale, 6, 300, 24
    sheet = Image.new("RGB", (text_w + len(SETTINGS) * (side + pad), head + len(firsts) * (side + pad)),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for j, (title, _) in enumerate(SETTINGS):
        draw.text((text_w + j * (side + pad) + 4, 6), title, fill="black")
    for i, cap in enumerate(firsts):
        y = head + i * (side + pad)
        draw.text((4, y + side // 2 - 6), f"[{cap.tag}] {cap.prompt}", fill="black")
        for j, (_, knobs) in enumerate(SETTINGS):
            result = pipe(cap.prompt, seed=0, rewriter="identity", n_rewrites=1, lam=lam, **knobs)
            x = text_w + j * (side + pad)
            ok = judge(cap, result.image)
            draw.rectangle((x - 3, y - 3, x + side + 2, y + side + 2), outline="green" if ok else "red",
                           width=3)
            sheet.paste(result.image.resize((side, side), Image.NEAREST), (x, y))
            for obj in result.layout.objects:
                x0, y0, x1, y1 = (round(v * side) for v in obj.box)
                draw.rectangle((x + x0, y + y0, x + x1 - 1, y + y1 - 1), outline="cyan", width=1)
    sheet.save(path)
