"""The report's PNG plots, from the pooled rows of one run (benchmarks/report.py):
throughput vs concurrency, TTFT and TPOT percentiles vs concurrency, and adapters vs base for
the LoRA targets. One colour per target, one line style per series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.report import Pooled, concurrencies, pooled_value


def plots(p: Pooled, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = sorted({t for t, _, _ in p})
    cs = concurrencies(p)
    made = []

    def series(t: str, s: str, field: str) -> tuple[list[int], list[float]]:
        pts = [(c, v) for c in cs if (v := pooled_value(p, t, s, c, field)) is not None]
        return [c for c, _ in pts], [v for _, v in pts]

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        made.append(name)

    def suffix(field: str) -> str:
        return field.rsplit("_", 1)[1] if "_ms_p" in field else ""

    def lines(ax: Any, pairs: list[tuple[str, str, str, str]], ylabel: str) -> None:
        for t, s, field, style in pairs:
            xs, ys = series(t, s, field)
            if xs:
                color = f"C{targets.index(t) % 10}"  # one colour per target, style per series
                ax.plot(xs, ys, style, color=color, marker="o", label=f"{t} {s} {suffix(field)}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(cs, [str(c) for c in cs])
        ax.set(xlabel="concurrency", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)

    fig, ax = plt.subplots(figsize=(6, 4))
    lines(ax, [(t, "base", "output_tok_s", "-") for t in targets], "output tokens/s")
    ax.set_title("Throughput, base model")
    save(fig, "throughput_vs_concurrency.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("ttft", "tpot"), strict=True):
        styles = ((50, "-"), (90, ":"), (99, "--"))
        pairs = [(t, "base", f"{metric}_ms_p{q}", st) for t in targets for q, st in styles]
        lines(ax, pairs, f"{metric.upper()} (ms, log scale)")
        ax.set_yscale("log")
        ax.set_title(f"{metric.upper()} p50 / p90 / p99, base model")
    save(fig, "latency_vs_concurrency.png")

    lora = [t for t in ("ours", "vllm-lora", "ray-lora") if t in targets]
    if lora:
        fig, ax = plt.subplots(figsize=(6, 4))
        scen = {"base": "-", "adapter": "--", "mix4": ":"}
        pairs = [(t, s, "output_tok_s", st) for t in lora for s, st in scen.items()]
        lines(ax, pairs, "output tokens/s")
        ax.set_title("Adapters vs base model")
        save(fig, "adapters_vs_base.png")
    return made
