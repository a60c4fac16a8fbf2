"""Fast PIL/numpy image preprocessing for embedders (no torchvision).

The steps reproduce transformers' PIL image processors (``CLIPImageProcessorPil``,
``BitImageProcessorPil``): resize the short side with PIL (the long side is truncated the
same way), centre-crop with the same rounding, then ``(pixel * rescale - mean) / std``.
tests/vision/test_preprocess_parity.py checks the parity on real photos.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Resample(StrEnum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    LANCZOS = "lanczos"

    @property
    def pil(self) -> Image.Resampling:
        return Image.Resampling[self.name]

    @classmethod
    def from_pil(cls, value: int) -> Resample:
        return cls(Image.Resampling(value).name.lower())


class ChannelOrder(StrEnum):
    RGB = "rgb"
    BGR = "bgr"


class Layout(StrEnum):
    NCHW = "nchw"
    NHWC = "nhwc"


@dataclass(frozen=True)
class PreprocessSpec:
    """How to turn an RGB image into one model input.

    ``resize_short_side`` None means: resize the whole image straight to the crop size
    (aspect ratio not kept, no crop). Values are ``(pixel * rescale - mean) / std``.
    """

    crop_height: int
    crop_width: int
    resize_short_side: int | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale: float = 1 / 255
    resample: Resample = Resample.BICUBIC
    channel_order: ChannelOrder = ChannelOrder.RGB
    layout: Layout = Layout.NCHW

    def __post_init__(self) -> None:
        if min(self.crop_height, self.crop_width) <= 0:
            raise ValueError(
                f"crop size must be positive, got {self.crop_height}x{self.crop_width}"
            )
        if self.resize_short_side is not None and self.resize_short_side <= 0:
            raise ValueError(f"resize_short_side must be positive, got {self.resize_short_side}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std need 3 values, std > 0; got {self.mean}, {self.std}")

    @classmethod
    def square(
        cls,
        side: int,
        short_side: int | None,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
    ) -> PreprocessSpec:
        """A ``side`` x ``side`` input: the short side resized to ``short_side`` (bicubic),
        then a centre crop, as transformers' CLIP and Bit processors do (None: straight to
        the square)."""
        return cls(side, side, short_side, mean, std)

    @property
    def draft_size(self) -> tuple[int, int]:
        """Smallest decode size that loses nothing for this spec (for ``Image.draft``)."""
        side = self.resize_short_side or max(self.crop_height, self.crop_width)
        return (side, side)


def short_side_size(width: int, height: int, short: int) -> tuple[int, int]:
    """(width, height) with the short side set to ``short``, as transformers computes it."""
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def resize_and_crop(image: Image.Image, spec: PreprocessSpec) -> Image.Image:
    """Resize then centre-crop to the spec's crop size (RGB in, RGB out)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if spec.resize_short_side is None:
        size = (spec.crop_width, spec.crop_height)
        return rgb if rgb.size == size else rgb.resize(size, spec.resample.pil)
    size = short_side_size(rgb.width, rgb.height, spec.resize_short_side)
    resized = rgb if rgb.size == size else rgb.resize(size, spec.resample.pil)
    return center_crop(resized, spec.crop_height, spec.crop_width)


def center_crop(image: Image.Image, height: int, width: int) -> Image.Image:
    """Centre crop with transformers' rounding; pads with black when the image is smaller."""
    top = (image.height - height) // 2
    left = (image.width - width) // 2
    if (top, left) == (0, 0) and image.size == (width, height):
        return image
    return image.crop((left, top, left + width, top + height))


@functools.lru_cache(maxsize=64)
def _affine(spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (scale, offset) in input channel order, shaped for the spec's layout."""
    std = np.asarray(spec.std, dtype=np.float64)
    scale = spec.rescale / std
    offset = -np.asarray(spec.mean, dtype=np.float64) / std
    if spec.channel_order is ChannelOrder.BGR:
        scale, offset = scale[::-1], offset[::-1]
    shape = (3, 1, 1) if spec.layout is Layout.NCHW else (3,)
    scale32, offset32 = (
        scale.astype(np.float32).reshape(shape),
        offset.astype(np.float32).reshape(shape),
    )
    scale32.flags.writeable = False
    offset32.flags.writeable = False
    return scale32, offset32


def batch_shape(count: int, spec: PreprocessSpec) -> tuple[int, int, int, int]:
    """The shape of a batch of ``count`` model inputs in the spec's layout."""
    if spec.layout is Layout.NCHW:
        return (count, 3, spec.crop_height, spec.crop_width)
    return (count, spec.crop_height, spec.crop_width, 3)


def normalize_into(image: Image.Image, spec: PreprocessSpec, out: np.ndarray) -> None:
    """Write one cropped RGB image, normalised, into ``out`` (one row of a batch buffer).

    ``(pixel * scale + offset)`` in float32, straight from the image's uint8 buffer into
    ``out``: no intermediate float arrays.
    """
    pixels = np.asarray(image)
    if spec.channel_order is ChannelOrder.BGR:
        pixels = pixels[:, :, ::-1]
    view = pixels.transpose(2, 0, 1) if spec.layout is Layout.NCHW else pixels
    scale, offset = _affine(spec)
    np.multiply(view, scale, out=out)
    np.add(out, offset, out=out)


def preprocess_into(image: Image.Image, spec: PreprocessSpec, out: np.ndarray) -> None:
    """Resize, crop and normalise ``image`` into ``out`` (one row of a batch buffer)."""
    normalize_into(resize_and_crop(image, spec), spec, out)


def to_array(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """One cropped RGB image as a normalised float32 array in the spec's layout."""
    out = np.empty(batch_shape(1, spec)[1:], dtype=np.float32)
    normalize_into(image, spec, out)
    return out


def preprocess_images(images: Sequence[Image.Image], spec: PreprocessSpec) -> np.ndarray:
    """A batch of images as one contiguous float32 array, NCHW (or NHWC when the spec says so)."""
    batch = np.empty(batch_shape(len(images), spec), dtype=np.float32)
    for index, image in enumerate(images):
        preprocess_into(image, spec, batch[index])
    return batch
