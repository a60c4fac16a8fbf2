"""The champion-health trend: fresh AP with its bootstrap band over evaluations, against the
training CV AP of the version evaluated. A bare matplotlib `Figure` on the Agg canvas, as in
`learning.projection` (no pyplot state)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def trend_png(
    times: Sequence[datetime],
    ap: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    cv_ap: Sequence[float | None],
    *,
    title: str,
    floor: float | None = None,
) -> bytes:
    """PNG bytes: one point per evaluation (x: its time), a shaded 95% interval, the
    training CV AP as a step line and the ERROR floor as a dashed line."""
    if not len(times) == len(ap) == len(low) == len(high) == len(cv_ap):
        raise ValueError("times, ap, low, high and cv_ap must have one entry per evaluation")
    fig = Figure(figsize=(6.5, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.asarray([t.astimezone(UTC).replace(tzinfo=None) for t in times], "datetime64[s]")
    ax.fill_between(x, low, high, alpha=0.25, label="95% bootstrap interval")
    ax.plot(x, ap, marker="o", label="fresh AP")
    known = np.asarray([c is not None for c in cv_ap])
    if known.any():
        cv = np.asarray([c for c in cv_ap if c is not None], dtype=np.float64)
        ax.step(x[known], cv, where="post", color="0.4", label="training CV AP")
    if floor is not None:
        ax.axhline(floor, color="tab:red", linestyle="--", linewidth=1, label="ERROR floor")
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel("average precision")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(fontsize="small", loc="lower left")
    ax.set_title(title, fontsize="medium")
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
