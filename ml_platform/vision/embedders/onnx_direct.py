"""A built-in type's accepted ONNX variant built straight from the cache, without torch.

The full path (backend_select.torch_with_backend) loads the torch model to learn the key of
its cache entry: the checkpoint's revision and the architecture fingerprint (a hash of the
model's transformers config). When it serves an ONNX variant of pretrained weights it also
writes a source record, ``<model>/<revision>-<type>-transformers<version>.source.json``,
holding that fingerprint. A later build reads the revision from the checkpoint's files alone
(the hub commit of its ``config.json``, or the sha256 of a local directory's weight files,
as ``torch_base.model_revision`` does), finds the source record, and walks the backends as
``variants.first_accepted`` does: the first accepted and current record is loaded, a refused
one is skipped; a missing or stale one, or reaching torch, gives None and the caller takes
the full path (which makes, checks and records what is missing). Random weights never come
from here. Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from ml_platform.domain import BuiltinEmbeddingType, WeightsStatus
from ml_platform.vision.embedders.backends import Backend, candidates
from ml_platform.vision.embedders.base import Embedder, EmbedderOptions, file_sha256
from ml_platform.vision.embedders.identity import EmbedderIdentity
from ml_platform.vision.embedders.onnx_cache import CacheEntry, cache_entry, slug
from ml_platform.vision.preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PreprocessSpec,
)

log = logging.getLogger(__name__)

WEIGHT_PATTERNS = ("*.safetensors", "*.bin")
CONFIG_FILE = "config.json"
# CLIPImageProcessor: short side 224 (bicubic), centre crop 224, /255, CLIP mean and std.
CLIP_SPEC = PreprocessSpec.square(224, 224, CLIP_MEAN, CLIP_STD)
# BitImageProcessor as configured for facebook/dinov2-*: short side 256 (bicubic),
# centre crop 224, /255, ImageNet mean and std.
DINO_SPEC = PreprocessSpec.square(224, 256, IMAGENET_MEAN, IMAGENET_STD)
DEFAULT_SPECS = {
    BuiltinEmbeddingType.CLIP_VIT_B_32.value: CLIP_SPEC,
    BuiltinEmbeddingType.DINO_V2.value: DINO_SPEC,
}


def weights_revision(model_id: str) -> str | None:
    """``sha256:<prefix>`` of a local checkpoint directory's weight files; None otherwise."""
    directory = Path(model_id)
    files = sorted(f for pattern in WEIGHT_PATTERNS for f in directory.glob(pattern))
    if directory.is_dir() and files:
        return f"sha256:{file_sha256(files)}"
    return None


def checkpoint_revision(model_id: str) -> str | None:
    """The revision ``from_pretrained`` would report, from the files alone: the hub commit
    of the checkpoint's config, else a local directory's weights hash; None: unknown."""
    from transformers.utils.hub import cached_file, extract_commit_hash

    config: str | None = str(Path(model_id) / CONFIG_FILE)
    if not Path(model_id).is_dir():
        try:
            config = cached_file(model_id, CONFIG_FILE, _raise_exceptions_for_missing_entries=False)
        except (OSError, ValueError) as exc:
            log.debug("%s: no cached %s (%s)", model_id, CONFIG_FILE, exc)
            return None
    commit = extract_commit_hash(config, None) if config is not None else None
    return commit or weights_revision(model_id)


def source_path(cache: Path, name: str, model_id: str, revision: str) -> Path:
    """Where the fingerprint of ``model_id`` at ``revision`` as ``name`` is recorded."""
    key = f"{revision}-{name}-transformers{version('transformers')}"
    return cache / slug(model_id) / f"{slug(key)}.source.json"


def write_source(cache: Path, identity: EmbedderIdentity, fingerprint: str) -> None:
    """Record the fingerprint a pretrained checkpoint's variants are cached under."""
    if identity.weights is not WeightsStatus.PRETRAINED or identity.checkpoint == "unknown":
        return
    path = source_path(cache, identity.embedding_type, identity.model_id, identity.checkpoint)
    text = json.dumps({"fingerprint": fingerprint}, sort_keys=True)
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


def cached_builtin(name: str, options: EmbedderOptions) -> Embedder | None:
    """CLIP's or DINOv2's accepted ONNX variant from the cache; None: take the full path."""
    model_id = _model_id(name, options)
    choice = options.backend_for(name)
    if model_id is None or choice is Backend.TORCH:
        return None
    cache = options.resolved_onnx_cache_dir
    if not any((cache / slug(model_id)).glob("*.source.json")):
        return None  # nothing recorded: skip the revision (a weights hash) the full path reads
    revision = checkpoint_revision(model_id)
    if revision is None:
        return None
    fingerprint = _recorded_fingerprint(source_path(cache, name, model_id, revision))
    if fingerprint is None:
        return None
    found = _accepted_entry(name, options, lambda b: cache_entry(cache, model_id, revision,
                                                                 fingerprint, b))  # fmt: skip
    if found is None:
        return None
    from ml_platform.vision.embedders.onnx import OrtEmbedder
    from ml_platform.vision.embedders.processor_config import spec_for_checkpoint

    identity = EmbedderIdentity(name, model_id, revision, None, WeightsStatus.PRETRAINED)
    backend = found.backend
    log.info("%s: %s from the ONNX cache without torch (%s)", name, backend.value, found.directory)
    return OrtEmbedder(
        identity.on(backend, native=Backend.TORCH),
        backend=backend,
        path=found.model_path,
        spec=spec_for_checkpoint(model_id, DEFAULT_SPECS[name]),
        options=options,
    )


def _recorded_fingerprint(source: Path) -> str | None:
    if not source.is_file():
        return None
    try:
        return str(json.loads(source.read_text())["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable source record (%s); taking the full path", source, exc)
        return None


def _model_id(name: str, options: EmbedderOptions) -> str | None:
    if name == BuiltinEmbeddingType.CLIP_VIT_B_32:
        return options.clip_model
    if name == BuiltinEmbeddingType.DINO_V2:
        return options.dino_model
    return None


def _accepted_entry(
    name: str, options: EmbedderOptions, entry_for: Callable[[Backend], CacheEntry]
) -> CacheEntry | None:
    """The entry ``variants.first_accepted`` would load, when every record it reads on the
    way is there and current (else None: the full path makes or remakes one)."""
    from ml_platform.vision.embedders.int8_cpu import this_cpu
    from ml_platform.vision.embedders.static_int8 import platform_recipe

    for backend in candidates(options.backend_for(name), Backend.TORCH, options.device):
        if backend is Backend.TORCH:
            return None
        entry = entry_for(backend)
        record = entry.read_record()
        if record is None or not record.is_current(platform_recipe().label, this_cpu().label):
            return None
        if record.accepted:
            return entry
    return None
