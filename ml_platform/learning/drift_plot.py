"""Drift over batches: each test's p-value per batch (log scale) against its level, one line
per test (a focus's embedding test, a collection's predicted-positive share). A bare
matplotlib `Figure` on the Agg canvas, as `learning.health_plot`."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

P_FLOOR = 1e-4  # p-values below are drawn at the floor (a permutation p is never 0)


def drift_png(
    batches: Sequence[str],
    p_values: Mapping[str, Sequence[float]],
    levels: Sequence[float],
    *,
    title: str,
) -> bytes:
    """PNG bytes: x the batches in order, y each test's p-value (NaN: not evaluated, a gap),
    and the batch's smallest level (below it the batch is drifted) as a dashed step."""
    if any(len(v) != len(batches) for v in p_values.values()) or len(levels) != len(batches):
        raise ValueError("every series and the levels need one value per batch")
    fig = Figure(figsize=(6.5, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = list(range(len(batches)))
    for name, values in sorted(p_values.items()):
        y = [max(v, P_FLOOR) if math.isfinite(v) else math.nan for v in values]
        ax.plot(x, y, marker="o", markersize=3, label=name)
    ax.step(x, levels, where="mid", color="tab:red", linestyle="--", linewidth=1, label="level")
    ax.set_yscale("log")
    ax.set_ylim(P_FLOOR / 2, 1.5)
    ax.set_ylabel("p-value (no drift)")
    step = max(1, len(batches) // 8)
    ax.set_xticks(x[::step], [b[-12:] for b in batches[::step]], rotation=30, fontsize="x-small")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(fontsize="x-small", loc="lower left")
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
