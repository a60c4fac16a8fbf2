"""What CLIP's and DINOv2's image embedders share: a hub checkpoint (or, only when allowed,
the same architecture with seeded random weights) wrapped as a `TorchEmbedder` that carries
its identity. clip.py and dino.py each declare one `HubEmbedding`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ml_platform.domain import WeightsStatus
from ml_platform.vision.embedders.base import (
    RANDOM_REVISION,
    EmbedderOptions,
    EmbedderUnavailableError,
)
from ml_platform.vision.embedders.identity import EmbedderIdentity
from ml_platform.vision.embedders.processor_config import spec_for_checkpoint
from ml_platform.vision.embedders.torch_base import (
    Forward,
    TorchEmbedder,
    load_pretrained,
    random_fallback_warning,
)
from ml_platform.vision.preprocess import PreprocessSpec


@dataclass(frozen=True)
class HubEmbedding:
    """An embedding type backed by a transformers checkpoint."""

    name: str  # the embedding type
    setting: str  # the setting that names its checkpoint
    forward: Forward  # model, pixels -> vectors
    spec: PreprocessSpec  # the processor's preprocessing, when the checkpoint says nothing
    from_pretrained: Callable[[str], torch.nn.Module]  # the model class's from_pretrained
    dim_field: str  # the config field that gives the embedding's dimensionality

    def dim(self, config: Any) -> int:
        return int(getattr(config, self.dim_field))

    def load(
        self,
        model_id: str,
        options: EmbedderOptions,
        random: Callable[[EmbedderOptions], TorchEmbedder],
    ) -> TorchEmbedder:
        """The pretrained checkpoint ``model_id``; ``random(options)`` only when allowed."""
        try:
            model, revision = load_pretrained(
                self.from_pretrained, model_id, name=self.name, setting=self.setting
            )
        except EmbedderUnavailableError as exc:
            if not options.allow_random_weights:
                raise
            random_fallback_warning(self.name, model_id, exc)
            return random(options)
        spec = spec_for_checkpoint(model_id, self.spec)
        dim = self.dim(getattr(model, "config", None))
        return self.wrap(model, model_id, options, revision, spec, dim)

    def wrap(
        self,
        model: torch.nn.Module,
        model_id: str,
        options: EmbedderOptions,
        revision: str,
        spec: PreprocessSpec,
        dim: int,
    ) -> TorchEmbedder:
        """``model`` as this type's embedder (``revision`` RANDOM_REVISION: random weights)."""
        random = revision == RANDOM_REVISION
        weights = WeightsStatus.RANDOM if random else WeightsStatus.PRETRAINED
        return TorchEmbedder(
            EmbedderIdentity(self.name, model_id, revision, None, weights),
            model=model,
            forward=self.forward,
            dim=dim,
            spec=spec,
            batch_size=options.batch_size,
            device=options.device,
        )
