"""Round reports: judge win rates per dimension (this round's policy vs the previous round's
and vs the user's original prompt, on held-out prompts), prompt-length distribution (the paper
sees rewrites grow from ~15 to 100+ tokens over rounds), DPO metrics and phase timings."""
from __future__ import annotations

from collections.abc import Iterable

from t2i_training.evaluation import win_rates

MATCHES = ("vs_previous", "vs_original")


def length_stats(lengths: Iterable[int]) -> dict[str, float]:
    """``{n, mean, p10, p50, p90, max}`` of token counts (nearest-rank percentiles)."""
    values = sorted(lengths)
    if not values:
        return {"n": 0}

    def pct(q: float) -> int:
        return values[min(len(values) - 1, int(q * len(values)))]

    return {"n": len(values), "mean": round(sum(values) / len(values), 2), "p10": pct(0.1),
            "p50": pct(0.5), "p90": pct(0.9), "max": values[-1]}


def round_report(index: int, dimensions: Iterable[str], *, rewrites: list[dict],
                 pairs: list[dict], evals: list[dict], dpo: dict, timings: dict) -> dict:
    """JSON-able summary of one round from its unit records (see ``run_dir.py``)."""
    dimensions = list(dimensions)
    usable = [p for p in pairs if p["skipped"] is None]
    skipped = {}
    for p in pairs:
        if p["skipped"] is not None:
            skipped[p["skipped"]] = skipped.get(p["skipped"], 0) + 1
    return {
        "round": index,
        "prompts": len(rewrites),
        "pairs": len(usable),  # prompts that gave DPO at least one pair
        "dpo_pairs": sum(1 + len(p.get("more", [])) for p in usable),
        "skipped": skipped,
        "unparsed_votes": sum(p.get("unparsed", 0) for p in pairs),
        "eval_prompts": len(evals),
        "win_rate": {m: win_rates(evals, m, dimensions) for m in MATCHES},
        "prompt_tokens": {
            "sampled": length_stats(r["n_tokens"] for rec in rewrites for r in rec["rewrites"]),
            "chosen": length_stats(p["chosen_tokens"] for p in usable),
            "rejected": length_stats(p["rejected_tokens"] for p in usable),
            "eval": length_stats(e["tokens"]["current"] for e in evals),
        },
        "dpo": dpo,
        "timings_s": timings,
    }


def fmt_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2f}"


def round_table(report: dict):
    """A rich Table: one row per dimension (+ mean), win rates vs previous and vs original."""
    from rich.table import Table

    table = Table(title=f"round {report['round']}: win rate on {report['eval_prompts']} "
                        f"held-out prompts (0.5 = draw)")
    table.add_column("dimension")
    for match in MATCHES:
        table.add_column(match.replace("_", " "), justify="right")
    rates = report["win_rate"]
    for dim in rates[MATCHES[0]]:
        table.add_row(dim, *(fmt_rate(rates[m].get(dim)) for m in MATCHES))
    return table


def summary_table(reports: list[dict]):
    """A rich Table with one row per round: pairs, DPO loss, lengths, mean win rates, time."""
    from rich.table import Table

    table = Table(title="iterative DPO")
    for name in ("round", "pairs", "skipped", "dpo loss", "reward acc", "tokens p50",
                 "vs previous", "vs original", "seconds"):
        table.add_column(name, justify="right")
    for r in reports:
        dpo = r.get("dpo", {})
        table.add_row(
            str(r["round"]), str(r["pairs"]), str(sum(r["skipped"].values())),
            _num(dpo.get("loss")), _num(dpo.get("reward_accuracy")),
            str(r["prompt_tokens"]["sampled"].get("p50", "-")),
            fmt_rate(r["win_rate"]["vs_previous"]["mean"]),
            fmt_rate(r["win_rate"]["vs_original"]["mean"]),
            f"{sum(r['timings_s'].values()):.1f}")
    return table


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"
