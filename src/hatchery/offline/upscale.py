"""Upscaling by resampling and sharpening (OpenCV; classical, not an AI super-resolution model).

Images are enlarged with Lanczos resampling (a windowed sinc over 8x8 pixels) and then
sharpened with an unsharp mask (the image plus a fraction of its difference from a Gaussian
blur, scaled to the factor), which restores some of the edge contrast that interpolation
spreads out; no detail is invented. Transparency is kept: the colours are resampled
premultiplied by alpha, so transparent pixels do not bleed dark fringes into the edges.

Videos use bicubic resampling (Lanczos costs twice as much per frame for little visible
gain in motion) with the same sharpening, frame by frame, into H.264 with the sound kept.

Caps: the output's pixel count (``max_pixels``: 16.8 MP for images, 3840x2160 for video);
a factor that would exceed it is reduced to the largest that fits, never below 1, and an
input that does not fit even at 1x is refused. Factors above :data:`MAX_FACTOR` are refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from hatchery.offline.frames import (
    ByteArray,
    decode_image,
    describe,
    encode_png,
    f32,
    read_video,
    u8,
    write_mp4,
)
from hatchery.providers.base import Artifact

__all__ = ["MAX_FACTOR", "upscale_image", "upscale_video"]

MAX_FACTOR = 8
_SHARPEN = 0.6  # unsharp-mask amount


def _fitting_factor(factor: int, width: int, height: int, max_pixels: int) -> int:
    """``factor``, or the largest smaller one whose output fits in ``max_pixels``."""
    if not 1 <= factor <= MAX_FACTOR:
        raise ValueError(f"the upscaling factor must be 1 to {MAX_FACTOR}, got {factor}")
    if width * height > max_pixels:
        raise ValueError(
            f"the input is {width}x{height}, already over the {max_pixels:,}-pixel output limit; "
            "send a smaller one"
        )
    fitting = math.isqrt(max_pixels // (width * height))
    while fitting > 1 and (width * fitting) * (height * fitting) > max_pixels:
        fitting -= 1
    return max(1, min(factor, fitting))


def _sharpened(rgb: ByteArray, factor: int) -> ByteArray:
    """Unsharp mask: ``rgb + amount * (rgb - blur(rgb))``, the blur matched to the factor."""
    sigma = 0.6 + 0.4 * factor
    blurred = cv2.GaussianBlur(rgb, (0, 0), sigma)
    return u8(cv2.addWeighted(rgb, 1.0 + _SHARPEN, blurred, -_SHARPEN, 0.0))


def _resampled_rgba(rgba: ByteArray, size: tuple[int, int]) -> ByteArray:
    """Lanczos resampling of premultiplied colour, then un-premultiplied."""
    alpha = f32(rgba[..., 3:]) / 255.0
    premultiplied = f32(rgba[..., :3]) * alpha
    colour = f32(cv2.resize(premultiplied, size, interpolation=cv2.INTER_LANCZOS4))
    scaled_alpha = np.clip(f32(cv2.resize(alpha, size, interpolation=cv2.INTER_LANCZOS4)), 0, 1)
    scaled_alpha = scaled_alpha.reshape(size[1], size[0], 1)
    straight = colour / np.maximum(scaled_alpha, 1e-3)
    rgb = u8(np.clip(straight + 0.5, 0, 255))
    return np.dstack([rgb, u8(np.rint(scaled_alpha * 255.0))])


def _enlarged(pixels: ByteArray, factor: int) -> ByteArray:
    height, width = pixels.shape[:2]
    size = (width * factor, height * factor)
    if pixels.shape[2] == 4:
        rgba = _resampled_rgba(pixels, size) if factor > 1 else pixels
        rgb = _sharpened(np.ascontiguousarray(rgba[..., :3]), factor)
        return np.dstack([rgb, rgba[..., 3]])
    rgb = pixels if factor == 1 else u8(cv2.resize(pixels, size, interpolation=cv2.INTER_LANCZOS4))
    return _sharpened(rgb, factor)


def _even_floor(value: int) -> int:
    """4:2:0 video needs even sizes: round down (rounding up could pass ``max_pixels``)."""
    return max(2, value - value % 2)


def _reduced(factor: int, used: int, limit: int) -> str:
    if used == factor:
        return ""
    return f", reduced from {factor}\u00d7 to fit the {limit:,}-pixel limit"


def upscale_image(image: bytes, *, factor: int = 2, max_pixels: int = 16_777_216) -> Artifact:
    """The image enlarged ``factor`` times (reduced to fit ``max_pixels``) as PNG, alpha kept.

    ValueError for bytes that are not an image (or over 40 MP), a factor outside 1 to 8, or an
    image already over ``max_pixels``.
    """
    pixels = decode_image(image)
    height, width = pixels.shape[:2]
    used = _fitting_factor(factor, width, height, max_pixels)
    enlarged = _enlarged(pixels, used)
    what = (
        f"Upscaled {used}\u00d7 with Lanczos resampling and unsharp masking (OpenCV)"
        f"{_reduced(factor, used, max_pixels)}"
    )
    return Artifact(
        encode_png(enlarged), "png", width * used, height * used, description=describe(what)
    )


def upscale_video(
    video: bytes, *, factor: int = 2, max_pixels: int = 3840 * 2160, max_seconds: float = 60
) -> Artifact:
    """The video enlarged ``factor`` times (reduced to fit ``max_pixels`` a frame) as H.264 MP4
    with its sound. ValueError for bytes that are not a video, or one too long or too large."""
    clip = read_video(video, max_seconds=max_seconds, max_pixels=max_pixels)
    used = _fitting_factor(factor, clip.width, clip.height, max_pixels)
    size = (_even_floor(clip.width * used), _even_floor(clip.height * used))
    counter = [0]

    def frames() -> Iterator[ByteArray]:
        for rgb in clip.frames():
            counter[0] += 1
            enlarged = u8(cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC))
            yield _sharpened(enlarged, used)

    data = write_mp4(frames(), clip.fps, size, audio=clip.audio)
    what = (
        f"Upscaled {used}\u00d7 frame by frame with bicubic resampling and unsharp masking "
        f"(OpenCV, x264){_reduced(factor, used, max_pixels)}"
        + (", its sound kept" if clip.audio is not None else "")
    )
    seconds = float(counter[0] / clip.fps)
    return Artifact(data, "mp4", size[0], size[1], seconds, describe(what))
