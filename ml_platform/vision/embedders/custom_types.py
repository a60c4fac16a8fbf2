"""Custom ONNX embedding types declared in a YAML file (format: docs/embedding_types.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ml_platform.config_files import ConfigFileError, read_yaml, unknown_keys
from ml_platform.domain import BuiltinEmbeddingType
from ml_platform.vision.embedders.backends import Int8Mode
from ml_platform.vision.preprocess import ChannelOrder, Layout, PreprocessSpec, Resample

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class AlignMode(StrEnum):
    """How a custom type's input is prepared from a face crop before preprocessing."""

    NONE = "none"  # the crop as it is
    FIVE_POINT = "five_point"  # ArcFace alignment: 5 landmarks onto the reference (112 px)


class CustomTypeConfig(BaseModel):
    """One entry under ``embedding_types:``; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    onnx: Path
    input_size: int | tuple[int, int]
    resize_short_side: int | None = None
    resample: Resample = Resample.BICUBIC
    rescale: float = 1 / 255
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    pixel_offset: float | None = None
    pixel_scale: float | None = Field(None, gt=0)
    channel_order: ChannelOrder = ChannelOrder.RGB
    layout: Layout = Layout.NCHW
    input_name: str | None = None
    output_name: str | None = None
    l2_normalize: bool = False
    dim: int | None = Field(None, gt=0)
    align: AlignMode = AlignMode.NONE
    int8: Int8Mode | None = None  # opt into the onnx-int8 backend (auto: the better mode)

    @model_validator(mode="after")
    def _aligned_input_is_not_resized(self) -> CustomTypeConfig:
        if self.align is AlignMode.FIVE_POINT and self.resize_short_side is not None:
            raise ValueError(
                "align: five_point warps the face straight to input_size; drop resize_short_side"
            )
        return self

    @model_validator(mode="after")
    def _one_normalisation(self) -> CustomTypeConfig:
        by_pixel = self.pixel_offset is not None or self.pixel_scale is not None
        by_mean = self.mean is not None or self.std is not None
        if by_pixel == by_mean:
            raise ValueError("give either mean and std, or pixel_offset and pixel_scale")
        if by_pixel and (self.pixel_offset is None or self.pixel_scale is None):
            raise ValueError("pixel_offset and pixel_scale go together")
        if by_mean and (self.mean is None or self.std is None):
            raise ValueError("mean and std go together")
        return self


@dataclass(frozen=True)
class CustomEmbeddingType:
    """A validated custom type: where its model is and how to feed it."""

    name: str
    onnx_path: Path
    spec: PreprocessSpec
    input_name: str | None
    output_name: str | None
    l2_normalize: bool
    dim: int | None
    align: AlignMode = AlignMode.NONE
    int8: Int8Mode | None = None


# The fields a `CustomEmbeddingType` takes over unchanged from its `CustomTypeConfig`.
CARRIED_FIELDS = {f.name for f in fields(CustomEmbeddingType)} - {"name", "onnx_path", "spec"}


def load_custom_types(path: Path) -> dict[str, CustomEmbeddingType]:
    """Parse ``path``; ValueError naming the file and entry when something is wrong."""
    document = read_yaml(path, "custom embedding types file")
    entries = _entries(document, path)
    return {name: _parse_entry(name, raw, path) for name, raw in entries.items()}


def _entries(document: Any, path: Path) -> dict[str, Any]:
    entries = document.get("embedding_types") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise ConfigFileError(f"{path}: expected a mapping under 'embedding_types:'")
    unknown_keys(document, {"embedding_types"}, str(path))
    return entries


def _parse_entry(name: Any, raw: Any, path: Path) -> CustomEmbeddingType:
    builtins = [b.value for b in BuiltinEmbeddingType]
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"{path}: embedding type name {name!r} must match {NAME_PATTERN.pattern}")
    if name in builtins:
        raise ValueError(f"{path}: {name!r} is a built-in embedding type; pick another name")
    try:
        config = CustomTypeConfig.model_validate(raw)
        spec = _spec(config)
    except (ValidationError, ValueError) as exc:
        raise ValueError(f"{path}: embedding type {name!r} is invalid:\n{exc}") from exc
    onnx_path = config.onnx if config.onnx.is_absolute() else path.parent / config.onnx
    carried = config.model_dump(include=CARRIED_FIELDS)
    return CustomEmbeddingType(name, onnx_path.resolve(), spec, **carried)


def _spec(config: CustomTypeConfig) -> PreprocessSpec:
    size = config.input_size
    height, width = (size, size) if isinstance(size, int) else size
    if config.pixel_offset is not None and config.pixel_scale is not None:
        offset, scale = config.pixel_offset, config.pixel_scale
        rescale, mean, std = 1.0, (offset, offset, offset), (scale, scale, scale)
    elif config.mean is not None and config.std is not None:
        rescale, mean, std = config.rescale, config.mean, config.std
    else:  # unreachable: the validator requires one of the two forms
        raise ValueError("no normalisation given")
    return PreprocessSpec(
        crop_height=height,
        crop_width=width,
        resize_short_side=config.resize_short_side,
        mean=mean,
        std=std,
        rescale=rescale,
        resample=config.resample,
        channel_order=config.channel_order,
        layout=config.layout,
    )
