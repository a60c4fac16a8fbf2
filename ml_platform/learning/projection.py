"""A picture of a pet's clusters: 2-D PCA of the normalised embeddings, coloured by cluster.

Drawn on a bare matplotlib `Figure` with the Agg canvas: no pyplot global state, no display,
safe in worker threads. 600 x 450 px: readable in Dagster's metadata view, small enough to inline.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from ml_platform.learning.ann_index import FloatArray, l2_normalise

MAX_LEGEND_ENTRIES = 10


def projection_png(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    title: str | None = None,
    banner: str | None = None,
) -> bytes:
    """PNG bytes of `projection_figure`."""
    buf = io.BytesIO()
    projection_figure(embeddings, labels, title=title, banner=banner).savefig(buf, format="png")
    return buf.getvalue()


def projection_figure(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    title: str | None = None,
    banner: str | None = None,
    size_in: tuple[float, float] = (6.0, 4.5),
    dpi: int = 100,
) -> Figure:
    """The 2-D PCA scatter with labelled axes (share of variance each explains) and a legend
    of cluster sizes; label -1 (outliers) is drawn as grey crosses. `banner` (e.g. that the
    embeddings come from random weights) is written across the top, white on red."""
    x = l2_normalise(embeddings)
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(lab) != len(x):
        raise ValueError(f"{len(lab)} labels for {len(x)} embeddings; they must pair up")
    xy, explained = _pca_2d(x)
    fig = Figure(figsize=size_in, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label in np.unique(lab):
        pts = xy[lab == label]
        if label < 0:
            ax.scatter(pts[:, 0], pts[:, 1], s=28, c="0.55", marker="x",
                       label=f"outliers (n={len(pts)})")  # fmt: skip
        else:
            ax.scatter(pts[:, 0], pts[:, 1], s=28, alpha=0.85, edgecolors="white",
                       linewidths=0.5, label=f"cluster {label} (n={len(pts)})")  # fmt: skip
    if 0 < len(np.unique(lab)) <= MAX_LEGEND_ENTRIES:
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%} of variance)")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.set_title(title or f"{len(x)} images, PCA of normalised embeddings", fontsize="medium")
    if banner:
        fig.text(0.5, 0.985, banner, ha="center", va="top", color="white", fontsize="medium",
                 fontweight="bold", bbox={"facecolor": "#c62828", "edgecolor": "none"})  # fmt: skip
        fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.92))
    else:
        fig.tight_layout()
    return fig


def _pca_2d(x: FloatArray) -> tuple[NDArray[np.float64], tuple[float, float]]:
    """Coordinates on the top two principal axes (zeros where there are fewer axes) and the
    share of the variance each axis explains."""
    out, explained = np.zeros((len(x), 2)), np.zeros(2)
    if len(x) < 2:
        return out, (0.0, 0.0)
    centred = (x - x.mean(axis=0)).astype(np.float64)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]
    out[:, : len(axes)] = centred @ axes.T
    total = float((singular**2).sum())
    if total > 0:
        explained[: len(axes)] = singular[: len(axes)] ** 2 / total
    return out, (float(explained[0]), float(explained[1]))
