"""Raster to SVG by bitmap tracing with vtracer (not an AI model).

The picture is first simplified with an edge-preserving bilateral filter and a 5x5 median
(so photo noise does not become thousands of specks; tracing time grows with the number of
colour regions), then traced by vtracer: hierarchical colour clustering into stacked layers,
each region outlined and fitted with splines. Inputs over :data:`MAX_TRACE_PIXELS` are
downscaled first to bound the time (a 1-megapixel photo traces in about a second); the SVG
keeps the original size in its ``width``/``height`` and the traced grid in its ``viewBox``,
so it displays at the original size. Transparent pixels stay transparent (vtracer keys them
out).
"""

from __future__ import annotations

import math
import re

import cv2
import numpy as np
import vtracer  # type: ignore[import-untyped]

from hatchery.offline.frames import ByteArray, decode_image, describe, encode_png, u8
from hatchery.providers.base import Artifact

__all__ = ["MAX_TRACE_PIXELS", "vectorize"]

MAX_TRACE_PIXELS = 1_048_576
"""Images over this many pixels are downscaled to it before tracing."""

_TRACE_OPTIONS = {
    "colormode": "color",
    "hierarchical": "stacked",
    "mode": "spline",
    "filter_speckle": 8,  # regions under 8x8 pixels are dropped
    "color_precision": 5,  # significant bits per channel: 6 takes 3-4 times longer on photos
    "layer_difference": 24,
    "corner_threshold": 60,
    "length_threshold": 4.0,
    "max_iterations": 10,
    "splice_threshold": 45,
    "path_precision": 2,
}
_SVG_TAG = re.compile(r"<svg\b[^>]*>")


def _smoothed(pixels: ByteArray) -> ByteArray:
    """Bilateral then median filtering of the colour channels (alpha untouched)."""
    rgb = np.ascontiguousarray(pixels[..., :3])
    smooth = u8(cv2.medianBlur(u8(cv2.bilateralFilter(rgb, 9, 60, 7)), 5))
    if pixels.shape[2] == 3:
        return smooth
    return np.dstack([smooth, pixels[..., 3]])


def _bounded(pixels: ByteArray) -> ByteArray:
    height, width = pixels.shape[:2]
    if width * height <= MAX_TRACE_PIXELS:
        return pixels
    scale = math.sqrt(MAX_TRACE_PIXELS / (width * height))
    size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
    return u8(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA))


def _sized(svg: str, size: tuple[int, int], grid: tuple[int, int]) -> str:
    """Give the root element the original size and the traced grid as its viewBox."""
    root = (
        f'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="{size[0]}" '
        f'height="{size[1]}" viewBox="0 0 {grid[0]} {grid[1]}">'
    )
    return _SVG_TAG.sub(root, svg, count=1)


def vectorize(image: bytes) -> Artifact:
    """Trace an image to a colour SVG. ValueError for bytes that are not an image (or > 40 MP)."""
    pixels = decode_image(image)
    height, width = pixels.shape[:2]
    traced = _smoothed(_bounded(pixels))
    grid = (traced.shape[1], traced.shape[0])
    svg = vtracer.convert_raw_image_to_svg(encode_png(traced), img_format="png", **_TRACE_OPTIONS)
    data = _sized(str(svg), (width, height), grid).encode()
    scaled = f", from a {grid[0]}x{grid[1]} downscale" if grid != (width, height) else ""
    what = (
        f"Traced to SVG by vtracer (colour clustering, stacked spline paths) after "
        f"edge-preserving smoothing{scaled}"
    )
    return Artifact(data, "svg", width, height, description=describe(what))
