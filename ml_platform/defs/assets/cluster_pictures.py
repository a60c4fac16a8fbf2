"""Pictures in the cluster assets' metadata: a projection and a hero contact sheet per pet.

Each is a PNG inlined as Markdown (`![..](data:image/png;base64,..)`), one metadata entry per
pet, for the `MAX_PICTURES` pets with the most images (a batch may touch hundreds; the event
log keeps every entry, so the rest are counted, not drawn).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import dagster as dg
from PIL import Image

from ml_platform.domain import WeightsStatus
from ml_platform.learning.cluster_store import PetClusters
from ml_platform.learning.hero import HeroPick
from ml_platform.learning.projection import projection_png
from ml_platform.services.pets import PetVectors
from ml_platform.store.layout import Layout
from ml_platform.store.thumbnails_table import has_thumbnails, read_thumbnails
from ml_platform.vision.contact_sheet import SheetRow, Tile, contact_sheet

MAX_PICTURES = 8
# Written on every picture drawn from random-weight embeddings (weights=random).
RANDOM_WEIGHTS_LABEL = "random weights \u2014 shows the plumbing, not quality"
Metadata = dict[str, dg.MetadataValue]  # type: ignore[type-arg]
PetHeroes = tuple[PetClusters, dict[int, list[HeroPick]]]  # a pet's clusters, heroes per label


def inline_png(png: bytes, title: str) -> dg.MetadataValue:  # type: ignore[type-arg]
    data = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"**{title}**\n\n![{title}](data:image/png;base64,{data})")


def largest(pets: Mapping[int, PetClusters]) -> list[int]:
    """The pets drawn: most images first, at most MAX_PICTURES."""
    ranked = sorted(pets, key=lambda p: (-len(pets[p].image_ids), p))
    return ranked[:MAX_PICTURES]


def banner_for(weights: str) -> str | None:
    """The label a picture carries for its embeddings' weights (None: pretrained)."""
    return RANDOM_WEIGHTS_LABEL if weights == WeightsStatus.RANDOM.value else None


def projection_entries(
    updated: Mapping[int, PetClusters], vectors: PetVectors, weights: str
) -> Metadata:
    """`projection pet <id>`: each drawn pet's PCA scatter coloured by cluster."""
    out: Metadata = {}
    for pet in largest({p: c for p, c in updated.items() if len(c.image_ids) >= 2}):
        clusters = updated[pet]
        _, matrix = vectors[pet]
        title = f"pet {pet}: {len(clusters.image_ids)} images, k={clusters.k} ({clusters.method})"
        png = projection_png(matrix, clusters.labels, banner=banner_for(weights))
        out[f"projection pet {pet}"] = inline_png(png, title)
    out["projections_left_out"] = dg.MetadataValue.int(max(0, len(updated) - MAX_PICTURES))
    return out


def hero_sheet_entries(
    layout: Layout,
    batches: Sequence[str],
    pets: Mapping[int, PetHeroes],
    weights: str,
) -> Metadata:
    """`heroes pet <id>`: one row per cluster, its heroes' thumbnails captioned with scores."""
    drawn = largest({pet: clusters for pet, (clusters, _) in pets.items()})
    wanted = {p.image_id for pet in drawn for picks in pets[pet][1].values() for p in picks}
    thumbs = _thumbnail_images(layout, batches, wanted)
    out: Metadata = {}
    for pet in drawn:
        clusters, heroes = pets[pet]
        rows = [
            SheetRow(f"cluster {c.label} (n={c.size})", _tiles(heroes.get(c.label, []), thumbs))
            for c in clusters.clusters
        ]
        if rows:
            title = f"pet {pet}: heroes per cluster (image id, score)"
            png = contact_sheet(rows, banner=banner_for(weights))
            out[f"heroes pet {pet}"] = inline_png(png, title)
    out["hero_sheets_left_out"] = dg.MetadataValue.int(max(0, len(pets) - MAX_PICTURES))
    return out


def _tiles(picks: Sequence[HeroPick], thumbs: Mapping[int, Image.Image]) -> tuple[Tile, ...]:
    return tuple(Tile(thumbs.get(p.image_id), f"#{p.image_id}  {p.score:.2f}") for p in picks)


def _thumbnail_images(
    layout: Layout, batches: Sequence[str], ids: set[int]
) -> dict[int, Image.Image]:
    """Decoded thumbnails of `ids` from the batches' `thumbnails` tables (absent: not drawn)."""
    out: dict[int, Image.Image] = {}
    for key in batches:
        if not has_thumbnails(layout, key):
            continue  # thumbnails not made for this batch yet: its heroes are drawn blank
        for image_id, row in read_thumbnails(layout, key, ids=ids).items():
            if row.data is not None:
                out[image_id] = Image.open(io.BytesIO(row.data))
    return out
