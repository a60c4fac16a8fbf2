"""A built-in type's accepted ONNX variant is built from a warm cache without torch
(vision/embedders/onnx_direct.py); anything missing, refused or stale takes the full path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from transformers import CLIPVisionModelWithProjection, Dinov2Model

from ml_platform.vision.embedders import EmbedderOptions, build_embedder
from ml_platform.vision.embedders.backends import Backend
from ml_platform.vision.embedders.onnx import OrtEmbedder
from ml_platform.vision.embedders.onnx_cache import CacheEntry, ExportRecord
from ml_platform.vision.embedders.onnx_direct import cached_builtin, source_path
from ml_platform.vision.embedders.torch_base import TorchEmbedder
from tests.vision.test_backends import CLIP, DINO, tiny_clip, tiny_dino

# The tiny CLIP is 64 px; its checkpoint says so the way a hub processor file does.
CLIP_PROCESSOR = {"crop_size": 64, "size": {"shortest_edge": 64}, "do_center_crop": True}


def save_checkpoint(name: str, directory: Path) -> Path:
    """A tiny checkpoint written with save_pretrained, as ML_PLATFORM_*_MODEL may name."""
    if name == CLIP:
        CLIPVisionModelWithProjection(tiny_clip()).save_pretrained(directory)
        (directory / "preprocessor_config.json").write_text(json.dumps(CLIP_PROCESSOR))
    else:
        Dinov2Model(tiny_dino()).save_pretrained(directory)
    return directory


def options_for(root: Path, backend: str = "onnx") -> EmbedderOptions:
    return EmbedderOptions(
        clip_model=str(root / CLIP),
        dino_model=str(root / DINO),
        backend=backend,
        onnx_cache_dir=root / "onnx",
        allow_random_weights=False,
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both tiny checkpoints, and an ONNX cache warmed by one full build of each."""
    base = tmp_path_factory.mktemp("direct")
    for name in (CLIP, DINO):
        save_checkpoint(name, base / name)
        first = build_embedder(name, options_for(base))
        assert isinstance(first, OrtEmbedder) and first.backend is Backend.ONNX
    return base


def pixels_for(embedder: OrtEmbedder) -> np.ndarray:
    rng = np.random.default_rng(3)
    shape = (3, 3, embedder.spec.crop_height, embedder.spec.crop_width)
    return rng.standard_normal(shape).astype(np.float32)


def entry_of(embedder: OrtEmbedder) -> CacheEntry:
    return CacheEntry(embedder.path.parent, embedder.backend)


@pytest.mark.parametrize("name", [CLIP, DINO])
def test_a_warm_cache_gives_the_same_embedder_without_the_torch_model(
    root: Path, name: str
) -> None:
    options = options_for(root)
    direct = cached_builtin(name, options)
    assert isinstance(direct, OrtEmbedder)
    full = build_embedder(name, options)  # the fast path again, through by_name
    assert isinstance(full, OrtEmbedder) and full.path == direct.path
    assert (direct.name, direct.model_id, direct.revision, direct.weights, direct.dim) == (
        full.name, full.model_id, full.revision, full.weights, full.dim,
    )  # fmt: skip
    assert direct.revision.startswith("sha256:") and direct.revision.endswith("+onnx")
    assert direct.spec == full.spec
    np.testing.assert_array_equal(
        direct.embed_preprocessed(pixels_for(direct)), full.embed_preprocessed(pixels_for(full))
    )


@pytest.mark.parametrize("name", [CLIP, DINO])
def test_the_same_vectors_as_the_path_through_torch_for_the_same_file(
    root: Path, name: str
) -> None:
    direct = cached_builtin(name, options_for(root))
    assert isinstance(direct, OrtEmbedder)
    from ml_platform.vision.embedders.backend_select import torch_with_backend
    from ml_platform.vision.embedders.clip import load_clip
    from ml_platform.vision.embedders.dino import load_dino

    load = load_clip if name == CLIP else load_dino
    through_torch = torch_with_backend(load(options_for(root)), options_for(root))
    assert isinstance(through_torch, OrtEmbedder) and through_torch.path == direct.path
    assert through_torch.revision == direct.revision and through_torch.spec == direct.spec
    pixels = pixels_for(direct)
    np.testing.assert_array_equal(
        direct.embed_preprocessed(pixels), through_torch.embed_preprocessed(pixels)
    )


SCRIPT = """
import json, sys
from pathlib import Path
from ml_platform.vision.embedders import EmbedderOptions, build_embedder
root = Path(sys.argv[1])
options = EmbedderOptions(clip_model=str(root / sys.argv[2]), dino_model=str(root / sys.argv[3]),
                          backend="onnx", onnx_cache_dir=root / "onnx")
built = [build_embedder(name, options) for name in sys.argv[2:]]
print(json.dumps({"torch": "torch" in sys.modules, "revisions": [e.revision for e in built],
                  "kinds": [type(e).__name__ for e in built]}))
"""


def test_a_fresh_process_builds_both_from_the_warm_cache_without_importing_torch(
    root: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), CLIP, DINO],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    expected = [cached_builtin(n, options_for(root)) for n in (CLIP, DINO)]
    assert seen["kinds"] == ["OrtEmbedder", "OrtEmbedder"]
    assert seen["revisions"] == [e.revision for e in expected if e is not None]
    assert seen["torch"] is False


def test_a_refused_record_takes_the_full_path_and_its_fallback(root: Path) -> None:
    options = options_for(root)
    warm = cached_builtin(DINO, options)
    assert isinstance(warm, OrtEmbedder)
    entry = entry_of(warm)
    kept = entry.record_path.read_text()
    record = ExportRecord.from_json(kept)
    try:
        entry.write_record(ExportRecord(**{**record.__dict__, "accepted": False}))
        assert cached_builtin(DINO, options) is None  # onnx refused: next is torch
        assert isinstance(build_embedder(DINO, options), TorchEmbedder)
    finally:
        entry.record_path.write_text(kept)


def test_a_stale_int8_record_or_changed_weights_take_the_full_path(
    root: Path, tmp_path: Path
) -> None:
    options = options_for(root, "onnx-int8")
    first = build_embedder(DINO, options)  # makes (and records) the INT8 variant
    assert isinstance(first, OrtEmbedder) and first.backend is Backend.ONNX_INT8
    assert isinstance(cached_builtin(DINO, options), OrtEmbedder)
    entry = entry_of(first)
    record = ExportRecord.from_json(entry.record_path.read_text())
    entry.write_record(ExportRecord(**{**record.__dict__, "cpu": "another-cpu-class"}))
    assert cached_builtin(DINO, options) is None
    assert isinstance(build_embedder(DINO, options), OrtEmbedder)  # remade on this class
    assert isinstance(cached_builtin(DINO, options), OrtEmbedder)
    moved = save_checkpoint(CLIP, tmp_path / CLIP)
    (moved / "model.safetensors").write_bytes(b"other weights")
    other = EmbedderOptions(clip_model=str(moved), backend="onnx", onnx_cache_dir=root / "onnx")
    assert cached_builtin(CLIP, other) is None  # another revision: nothing recorded for it


def test_an_unreadable_source_record_takes_the_full_path(root: Path) -> None:
    options = options_for(root)
    warm = cached_builtin(CLIP, options)
    assert isinstance(warm, OrtEmbedder)
    source = source_path(options.resolved_onnx_cache_dir, CLIP, warm.model_id,
                         warm.revision.removesuffix("+onnx"))  # fmt: skip
    kept = source.read_text()
    try:
        source.write_text("{not json")
        assert cached_builtin(CLIP, options) is None
        assert isinstance(build_embedder(CLIP, options), OrtEmbedder)  # and rewrites it
        assert source.read_text() == kept
    finally:
        source.write_text(kept)
