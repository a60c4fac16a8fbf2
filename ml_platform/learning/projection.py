"""A picture of a pet's clusters: 2-D PCA of the normalised embeddings, coloured by cluster.

Drawn on a bare matplotlib `Figure` with the Agg canvas: no pyplot global state, no display,
safe in worker threads. Small on purpose (4 x 4 in at 80 dpi): it goes into Dagster metadata.
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
    size_in: float = 4.0,
    dpi: int = 80,
) -> bytes:
    """PNG bytes of the 2-D PCA scatter; label -1 (outliers) is drawn as grey crosses."""
    x = l2_normalise(embeddings)
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(lab) != len(x):
        raise ValueError(f"{len(lab)} labels for {len(x)} embeddings; they must pair up")
    xy = _pca_2d(x)
    fig = Figure(figsize=(size_in, size_in), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label in np.unique(lab):
        pts = xy[lab == label]
        if label < 0:
            ax.scatter(pts[:, 0], pts[:, 1], s=12, c="0.6", marker="x", label="outlier")
        else:
            ax.scatter(pts[:, 0], pts[:, 1], s=12, label=f"cluster {label}")
    if 0 < len(np.unique(lab)) <= MAX_LEGEND_ENTRIES:
        ax.legend(fontsize="x-small", loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{len(x)} images, PCA", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _pca_2d(x: FloatArray) -> NDArray[np.float64]:
    """Coordinates on the top two principal axes (zeros where there are fewer axes)."""
    out = np.zeros((len(x), 2))
    if len(x) < 2:
        return out
    centred = (x - x.mean(axis=0)).astype(np.float64)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]
    out[:, : len(axes)] = centred @ axes.T
    return out
