"""Zero-shot label suggestions for a dataset's unlabelled images (the annotation worker).

Each class label becomes a prompt ("a photo of a golden retriever"); CLIP scores are a
softmax over the classes, SigLIP scores independent sigmoids, so each model has its own
threshold. An image gets its top-k classes at or above the threshold, best first (maybe none).
Models are `vision.zero_shot`'s: the same towers and tokenizers `/v1/zero-shot` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from PIL import Image

from ml_platform.domain import IngestedImage, WeightsStatus
from ml_platform.settings import Settings
from ml_platform.store.accepted_labels import AcceptedLabel
from ml_platform.store.layout import Layout
from ml_platform.vision.zero_shot import ZeroShotKind, ZeroShotModel, load_zero_shot, top_k

PROMPT = "a photo of a {label}"
DEFAULT_THRESHOLDS = {ZeroShotKind.CLIP.value: 0.3, ZeroShotKind.SIGLIP.value: 0.05}
SUGGESTIONS_FILE = "suggestions.json"


@dataclass(frozen=True)
class SuggestionSettings:
    model: ZeroShotKind = ZeroShotKind.CLIP
    top_k: int = 3
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    max_images: int = 500
    batch_size: int = 16

    @property
    def threshold(self) -> float:
        if self.model.value not in self.thresholds:
            raise ValueError(f"no threshold for model {self.model}; given: {self.thresholds}")
        return self.thresholds[self.model.value]


@dataclass(frozen=True)
class Suggestion:
    image_id: int
    labels: tuple[tuple[str, float], ...]  # (label, confidence), best first


@dataclass(frozen=True)
class SuggestionSet:
    dataset: str
    model: str  # "<kind>:<model id>"
    weights: str
    threshold: float
    suggestions: tuple[Suggestion, ...]

    def best(self, image_id: int) -> tuple[str, float] | None:
        found = next((s for s in self.suggestions if s.image_id == image_id), None)
        return found.labels[0] if found and found.labels else None


def prompt_for(label: str) -> str:
    return PROMPT.format(label=label.replace("_", " ").replace("-", " "))


def zero_shot_model(settings: Settings, kind: ZeroShotKind, model_id: str | None) -> ZeroShotModel:
    default = settings.clip_model if kind is ZeroShotKind.CLIP else settings.siglip_model
    return load_zero_shot(
        kind, model_id or default, allow_random_weights=settings.allow_random_weights,
        device=settings.device,
    )  # fmt: skip


def suggest(
    dataset: str,
    labels: Sequence[str],
    images: Sequence[IngestedImage],
    model: ZeroShotModel,
    settings: SuggestionSettings,
    load: Callable[[IngestedImage], Image.Image],
) -> SuggestionSet:
    """Top-k classes for each of (at most `max_images` of) `images`."""
    prompts = [prompt_for(label) for label in labels]
    chosen = sorted(images, key=lambda e: e.image.id)[: settings.max_images]
    out: list[Suggestion] = []
    for start in range(0, len(chosen), settings.batch_size):
        batch = chosen[start : start + settings.batch_size]
        scores = model.scores([load(e) for e in batch], prompts)
        for entry, row in zip(batch, scores, strict=True):
            ranked = top_k(row, list(labels), settings.top_k, settings.threshold)
            out.append(Suggestion(entry.image.id, tuple(ranked)))
    return SuggestionSet(
        dataset, f"{model.kind.value}:{model.model_id}", model.weights.value, settings.threshold,
        tuple(out),
    )  # fmt: skip


def to_accept(
    found: SuggestionSet, image_ids: Sequence[int] | None, min_confidence: float
) -> list[AcceptedLabel]:
    """The top suggestion of each chosen image (all when `image_ids` is None) as labels, each
    with the weights of the model that suggested it (random ones carry no meaning)."""
    wanted = None if image_ids is None else set(image_ids)
    weights = WeightsStatus(found.weights)
    out = []
    for s in found.suggestions:
        if (
            s.labels
            and (wanted is None or s.image_id in wanted)
            and s.labels[0][1] >= min_confidence
        ):
            label, confidence = s.labels[0]
            out.append(AcceptedLabel(found.dataset, s.image_id, label, found.model, confidence,
                                     weights=weights))  # fmt: skip
    return out


def write_suggestions(layout: Layout, found: SuggestionSet) -> None:
    layout.store.write_json(layout.label_suggestions(found.dataset), asdict(found))


def read_suggestions(layout: Layout, dataset: str) -> SuggestionSet:
    """The dataset's suggestions; MissingInputError (`ml-platform labels suggest`) if none."""
    data = layout.store.read_json(layout.label_suggestions(dataset))
    suggestions = tuple(
        Suggestion(int(s["image_id"]), tuple((str(a), float(b)) for a, b in s["labels"]))
        for s in data["suggestions"]
    )
    return SuggestionSet(data["dataset"], data["model"], data["weights"],
                         float(data["threshold"]), suggestions)  # fmt: skip
