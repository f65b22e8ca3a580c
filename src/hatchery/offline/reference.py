"""Image generation from reference images, by classical image processing (not an AI model).

:func:`transform_images` makes a new picture out of the reference images at the asked aspect
ratio, deterministically from ``sha256(index, prompt)``:

1. **Smart crop.** Each reference is cover-cropped to its target box around the window of
   highest saliency: a frequency-tuned saliency map (Achanta et al. 2009: distance of each
   blurred Lab colour from the image's mean colour) plus Sobel edge energy, computed on a
   128-pixel thumbnail and searched exhaustively with an integral image, with a mild pull to
   the centre.
2. **Layout.** One reference is cropped with a seeded zoom; several (at most
   :data:`MAX_REFERENCES`) become either a collage (a seeded guillotine split of the frame
   into tiles with gutters) or a double exposure (each layer blended in along a seeded soft
   linear gradient).
3. **Stylisation** (:class:`Stylizer`, shared with the video tools): a filter (OpenCV's
   ``stylization`` painterly filter, a cartoon filter of bilateral smoothing, colour
   quantisation and adaptive-threshold ink lines, an edge-preserving posterisation, a
   colour-dodge pencil sketch, or none with film grain), then a colour grade (per-channel
   contrast curves with split toning of shadows and highlights, applied as a lookup table),
   saturation and a vignette. Words in the prompt pick the filter ("sketch", "cartoon",
   "painting", "poster", "photo" ...) and the palette ("warm", "cold", "black and white" ...);
   whatever they leave open is drawn from the seed, so another ``index`` is another variation.

:func:`render_image` is the prompt-only case: the procedural renderer of
:mod:`hatchery.providers.render` at the asked size.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from hatchery.offline.frames import (
    ByteArray,
    FloatArray,
    Size,
    decode_rgb,
    describe,
    encode_png,
    f32,
    fit_size,
    u8,
)
from hatchery.providers.base import Artifact
from hatchery.providers.render import render_png

__all__ = [
    "MAX_REFERENCES",
    "Style",
    "Stylizer",
    "make_style",
    "render_image",
    "rng_for",
    "saliency",
    "smart_crop",
    "transform_images",
]

MAX_REFERENCES = 6
"""Reference images beyond this many are ignored (a collage of more is a mosaic of stamps)."""

_SALIENCY_SIDE = 128
_GRAIN_SLACK = 32  # the grain texture is this much larger than the frame, for offsets
_CENTRE_PULL = 0.2  # how much a window's saliency is discounted at the edge of its range
_FILTER_WORDS = {
    "pencil": ("sketch", "pencil", "drawing", "charcoal", "graphite"),
    "cartoon": ("cartoon", "comic", "anime", "manga", "cel", "illustration"),
    "painterly": ("painting", "painterly", "oil", "watercolor", "watercolour", "impressionis"),
    "posterise": ("poster", "pop art", "flat colour", "flat color", "screenprint", "vector"),
    "film": ("photo", "realistic", "cinematic", "film", "35mm", "analog"),
}
_FILTER_NAMES = {
    "painterly": "a painterly edge-preserving filter (OpenCV stylization)",
    "cartoon": "a cartoon filter (bilateral smoothing, colour quantisation, ink lines)",
    "posterise": "an edge-preserving posterisation",
    "pencil": "a colour-dodge pencil sketch",
    "film": "film grain",
}
_WARM = ("warm", "sunset", "sunrise", "golden", "autumn", "fire", "desert", "summer")
_COLD = ("cold", "winter", "night", "ice", "icy", "snow", "moon", "ocean", "underwater")
_MONO = ("black and white", "black & white", "monochrome", "noir", "grayscale", "greyscale")


def rng_for(prompt: str, index: int) -> np.random.Generator:
    """The generator every seeded choice is drawn from: ``sha256(index, prompt)``."""
    digest = hashlib.sha256(f"{index}\x00{prompt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


# ------------------------------------------------------------------------- smart crop


def saliency(rgb: ByteArray) -> tuple[FloatArray, float]:
    """A saliency map of a thumbnail of ``rgb`` and the thumbnail's scale (map px per px).

    Frequency-tuned colour contrast (blurred Lab distance from the mean colour) plus Sobel
    edge energy, each normalised to [0, 1], smoothed.
    """
    height, width = rgb.shape[:2]
    factor = min(1.0, _SALIENCY_SIDE / max(height, width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    blurred = cv2.GaussianBlur(lab, (0, 0), 1.5)
    colour = np.linalg.norm(blurred - lab.reshape(-1, 3).mean(axis=0), axis=2)
    grey = np.ascontiguousarray(lab[..., 0])
    edges = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    combined = colour / (colour.max() + 1e-6) + edges / (edges.max() + 1e-6)
    return f32(cv2.GaussianBlur(combined.astype(np.float32), (0, 0), 2.0)), factor


def _window_sums(sal: FloatArray, win_w: int, win_h: int) -> FloatArray:
    """Saliency inside every ``win_w`` x ``win_h`` window, indexed by its top-left corner."""
    table = cv2.integral(sal)
    rows, cols = table.shape[0] - win_h, table.shape[1] - win_w
    sums: FloatArray = (
        table[win_h:, win_w:] - table[:rows, win_w:] - table[win_h:, :cols] + table[:rows, :cols]
    )
    return sums


def _centre_pull(shape: tuple[int, ...]) -> FloatArray:
    """1 at the centred window position, ``1 - _CENTRE_PULL`` at the farthest ones."""
    ys = np.linspace(-1.0, 1.0, shape[0]) if shape[0] > 1 else np.zeros(1)
    xs = np.linspace(-1.0, 1.0, shape[1]) if shape[1] > 1 else np.zeros(1)
    pull: FloatArray = 1.0 - _CENTRE_PULL * (ys[:, None] ** 2 + xs[None, :] ** 2) / 2
    return pull


def salient_window(rgb: ByteArray, crop_w: int, crop_h: int) -> tuple[int, int]:
    """Top-left corner of the ``crop_w`` x ``crop_h`` window holding the most saliency."""
    height, width = rgb.shape[:2]
    if crop_w >= width and crop_h >= height:
        return 0, 0
    sal, factor = saliency(rgb)
    win_w = min(sal.shape[1], max(1, round(crop_w * factor)))
    win_h = min(sal.shape[0], max(1, round(crop_h * factor)))
    sums = _window_sums(sal, win_w, win_h)
    sums = sums * _centre_pull(sums.shape)
    row, col = np.unravel_index(int(np.argmax(sums)), sums.shape)
    x = min(max(0, round(int(col) / factor)), width - crop_w)
    y = min(max(0, round(int(row) / factor)), height - crop_h)
    return x, y


def resize(pixels: ByteArray, size: Size) -> ByteArray:
    """Resize to ``size`` (width, height): area averaging down, bicubic up."""
    height, width = pixels.shape[:2]
    if (width, height) == size:
        return pixels
    shrinking = size[0] < width and size[1] < height
    method = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return u8(cv2.resize(pixels, size, interpolation=method))


def smart_crop(rgb: ByteArray, size: Size, zoom: float = 1.0) -> ByteArray:
    """Cover-crop ``rgb`` to ``size`` around its most salient window (``zoom`` >= 1 tighter)."""
    height, width = rgb.shape[:2]
    scale = max(size[0] / width, size[1] / height) * max(1.0, zoom)
    crop_w = min(width, max(1, round(size[0] / scale)))
    crop_h = min(height, max(1, round(size[1] / scale)))
    x, y = salient_window(rgb, crop_w, crop_h)
    return resize(np.ascontiguousarray(rgb[y : y + crop_h, x : x + crop_w]), size)


# ----------------------------------------------------------------------------- layout

Rect = tuple[int, int, int, int]  # x, y, width, height


def _split(rects: list[Rect], count: int, rng: np.random.Generator) -> list[Rect]:
    """Guillotine-split the largest rectangle, across its longer side, until ``count``."""
    while len(rects) < count:
        rects.sort(key=lambda rect: rect[2] * rect[3], reverse=True)
        x, y, width, height = rects.pop(0)
        cut_at = rng.uniform(0.38, 0.62)
        if width >= height:
            cut = round(width * cut_at)
            rects += [(x, y, cut, height), (x + cut, y, width - cut, height)]
        else:
            cut = round(height * cut_at)
            rects += [(x, y, width, cut), (x, y + cut, width, height - cut)]
    return rects


def _collage(pictures: Sequence[ByteArray], size: Size, rng: np.random.Generator) -> ByteArray:
    width, height = size
    gutter = max(2, round(min(size) * 0.012))
    paper = (244, 240, 232) if rng.random() < 0.5 else (20, 20, 24)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[...] = paper
    half = gutter // 2
    rects = _split([(half, half, width - gutter, height - gutter)], len(pictures), rng)
    order = rng.permutation(len(pictures))
    for (x, y, w, h), which in zip(rects, order, strict=True):
        tile = (max(2, w - gutter), max(2, h - gutter))
        zoom = float(rng.uniform(1.0, 1.15))
        canvas[y + half : y + half + tile[1], x + half : x + half + tile[0]] = smart_crop(
            pictures[int(which)], tile, zoom
        )
    return canvas


def _smoothstep(values: FloatArray) -> FloatArray:
    clipped = np.clip(values, 0.0, 1.0)
    result: FloatArray = clipped * clipped * (3.0 - 2.0 * clipped)
    return result


def _gradient_mask(size: Size, rng: np.random.Generator) -> FloatArray:
    """A soft linear ramp across the frame at a seeded angle, position and softness."""
    width, height = size
    angle = rng.uniform(0.0, 2.0 * math.pi)
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    along = math.cos(angle) * xs + math.sin(angle) * ys
    along = (along - along.min()) / max(1e-6, float(along.max() - along.min()))
    centre, softness = rng.uniform(0.35, 0.65), rng.uniform(0.3, 0.7)
    return _smoothstep((along - centre) / softness + 0.5)[..., None]


def _double_exposure(
    pictures: Sequence[ByteArray], size: Size, rng: np.random.Generator
) -> ByteArray:
    result = smart_crop(pictures[0], size).astype(np.float32)
    for picture in pictures[1:]:
        mask = _gradient_mask(size, rng)
        result += (smart_crop(picture, size).astype(np.float32) - result) * mask
    return u8(np.clip(result + 0.5, 0, 255))


def _compose(
    pictures: Sequence[ByteArray], size: Size, rng: np.random.Generator
) -> tuple[ByteArray, str]:
    count = len(pictures)
    if count == 1:
        return smart_crop(pictures[0], size, float(rng.uniform(1.0, 1.2))), "Smart-cropped"
    if rng.random() < 0.65:
        return _collage(pictures, size, rng), f"Collage of {count}"
    return _double_exposure(pictures, size, rng), f"Double exposure of {count}"


# -------------------------------------------------------------------------- stylising


@dataclass(frozen=True)
class Style:
    """A seeded look: a filter, then a colour grade, saturation and a vignette."""

    filter: str  # "painterly" | "cartoon" | "posterise" | "pencil" | "film"
    levels: int  # colour levels per channel for cartoon and posterise
    strength: float  # filter strength in [0, 1]
    contrast: float  # S-curve amount in [0, 0.6]
    saturation: float
    shadows: tuple[float, float, float]  # RGB tint added in the shadows (about +-0.08)
    highlights: tuple[float, float, float]
    vignette: float  # darkening at the corners, in [0, 0.5]
    palette: str  # words for the grade, for the description
    seed: int

    @property
    def summary(self) -> str:
        return f"{_FILTER_NAMES[self.filter]}, a {self.palette} colour grade and a vignette"


def _has_any(text: str, words: Sequence[str]) -> bool:
    return any(word in text for word in words)


def _pick_filter(text: str, rng: np.random.Generator) -> str:
    for name, words in _FILTER_WORDS.items():
        if _has_any(text, words):
            return name
    return str(rng.choice(["painterly", "cartoon", "posterise", "film", "painterly"]))


def _tint(hue: float, amount: float) -> tuple[float, float, float]:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, 1.0, 1.0)
    mean = (red + green + blue) / 3
    return (amount * (red - mean), amount * (green - mean), amount * (blue - mean))


def _pick_palette(text: str, rng: np.random.Generator) -> tuple[str, float, float]:
    """(words, highlight hue, saturation)."""
    if _has_any(text, _MONO):
        return "black-and-white", float(rng.uniform(0.05, 0.12)), 0.0
    saturation = float(rng.uniform(0.9, 1.3))
    if _has_any(text, _WARM):
        return "warm split-tone", float(rng.uniform(0.04, 0.12)), saturation
    if _has_any(text, _COLD):
        return "cool split-tone", float(rng.uniform(0.52, 0.64)), saturation
    return "seeded split-tone", float(rng.random()), saturation


def make_style(prompt: str, index: int) -> Style:
    """The look for ``prompt`` and variation ``index``: prompt words first, then the seed."""
    rng = rng_for(prompt, index)
    text = prompt.lower()
    chosen = _pick_filter(text, rng)
    palette, hue, saturation = _pick_palette(text, rng)
    shadow_hue = hue + 0.5 + rng.uniform(-0.12, 0.12)  # about complementary: teal and orange
    return Style(
        filter=chosen,
        levels=int(rng.integers(5, 10)),
        strength=float(rng.uniform(0.3, 0.9)),
        contrast=float(rng.uniform(0.1, 0.45)),
        saturation=saturation,
        shadows=_tint(shadow_hue, float(rng.uniform(0.03, 0.09))),
        highlights=_tint(hue, float(rng.uniform(0.03, 0.09))),
        vignette=float(rng.uniform(0.12, 0.4)),
        palette=palette,
        seed=int(rng.integers(0, 2**31)),
    )


def _half_size(pixels: ByteArray) -> Size:
    return max(2, pixels.shape[1] // 2), max(2, pixels.shape[0] // 2)


def _posterised(pixels: ByteArray, levels: int) -> ByteArray:
    step = 256 / levels
    table = (np.floor(np.arange(256) / step) * step + step / 2).clip(0, 255).astype(np.uint8)
    return u8(cv2.LUT(pixels, table))


def _ink_lines(rgb: ByteArray) -> ByteArray:
    grey = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 5)
    block = max(3, (min(rgb.shape[:2]) // 80) | 1)
    return u8(
        cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 5)
    )


def _cartoon(rgb: ByteArray, style: Style, video: bool) -> ByteArray:
    small = u8(cv2.resize(rgb, _half_size(rgb), interpolation=cv2.INTER_AREA))
    for _ in range(2):
        small = u8(cv2.bilateralFilter(small, 7, 40 + 40 * style.strength, 7))
    smooth = u8(cv2.resize(small, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR))
    flat = _posterised(smooth, style.levels).astype(np.uint16)
    lines = _ink_lines(rgb).astype(np.uint16)[..., None]
    return (flat * lines // 255).astype(np.uint8)


def _painterly(rgb: ByteArray, style: Style, video: bool) -> ByteArray:
    sigma_s, sigma_r = 30 + 50 * style.strength, 0.3 + 0.25 * style.strength
    if not video:
        return u8(cv2.stylization(rgb, sigma_s=sigma_s, sigma_r=sigma_r))
    # per frame, OpenCV's stylization is too slow: its recursive filter at half size instead
    small = cv2.resize(rgb, _half_size(rgb), interpolation=cv2.INTER_AREA)
    flags, half_sigma = cv2.RECURS_FILTER, sigma_s / 2
    small = cv2.edgePreservingFilter(small, flags=flags, sigma_s=half_sigma, sigma_r=sigma_r)
    return u8(cv2.resize(small, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_CUBIC))


def _posterise(rgb: ByteArray, style: Style, video: bool) -> ByteArray:
    if video:
        smooth = u8(cv2.bilateralFilter(rgb, 7, 50, 5))
    else:
        sigma_r = 0.35 + 0.2 * style.strength
        smooth = u8(
            cv2.edgePreservingFilter(rgb, flags=cv2.RECURS_FILTER, sigma_s=40, sigma_r=sigma_r)
        )
    return _posterised(smooth, max(3, style.levels - 3))


def _pencil(rgb: ByteArray, style: Style, video: bool) -> ByteArray:
    """Colour dodge of the grey image by its blurred negative, tinted by the picture."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    sigma = max(1.0, min(rgb.shape[:2]) / 120) * (1 + style.strength)
    blurred = cv2.GaussianBlur(255 - grey, (0, 0), sigma)
    sketch = cv2.divide(grey, 255 - blurred, scale=256)
    tinted = cv2.addWeighted(rgb, 0.25, cv2.cvtColor(sketch, cv2.COLOR_GRAY2RGB), 0.75, 0)
    return u8(cv2.min(tinted, cv2.cvtColor(sketch, cv2.COLOR_GRAY2RGB)))


def _film(rgb: ByteArray, style: Style, video: bool) -> ByteArray:
    return rgb  # the grain is added with the grade


_FILTERS: dict[str, Callable[[ByteArray, Style, bool], ByteArray]] = {
    "painterly": _painterly,
    "cartoon": _cartoon,
    "posterise": _posterise,
    "pencil": _pencil,
    "film": _film,
}


def _grade_table(style: Style) -> ByteArray:
    """The colour grade as a (1, 256, 3) lookup table: an S-curve plus split toning."""
    values = np.linspace(0.0, 1.0, 256, dtype=np.float32)
    curved = values + style.contrast * (_smoothstep(values) - values)
    shadow = (1.0 - values) ** 2
    highlight = values**2
    channels = [
        curved + shadow * style.shadows[c] + highlight * style.highlights[c] for c in range(3)
    ]
    table = np.stack(channels, axis=1)[None]
    return np.clip(table * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _vignette(size: Size, amount: float) -> FloatArray:
    width, height = size
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    falloff = _smoothstep((xs * xs + ys * ys - 0.35) / 1.65)
    return f32(1.0 - amount * falloff)


def _grain(style: Style, size: Size) -> tuple[ByteArray, ByteArray]:
    """Monochrome film grain a little larger than the frame, split into its positive and
    negative parts (so it can be added with saturating uint8 arithmetic)."""
    rng = np.random.default_rng(style.seed)
    shape = (size[1] + _GRAIN_SLACK, size[0] + _GRAIN_SLACK)
    noise = rng.normal(0.0, 3.0 + 4.0 * style.strength, shape).astype(np.float32)
    positive = u8(np.rint(np.clip(noise, 0, 255)))
    negative = u8(np.rint(np.clip(-noise, 0, 255)))
    return u8(cv2.merge([positive] * 3)), u8(cv2.merge([negative] * 3))


class Stylizer:
    """Applies a :class:`Style` to RGB frames of one size (tables and masks built once).

    Everything after the filter is uint8 OpenCV arithmetic (a lookup table, a weighted sum
    with the grey image, a multiplication by the vignette), a few milliseconds at 720p.
    """

    def __init__(self, style: Style, size: Size, *, video: bool = False) -> None:
        self.style = style
        self.size = size
        self.video = video
        self._table = _grade_table(style)
        self._vignette = u8(cv2.merge([u8(np.rint(_vignette(size, style.vignette) * 255))] * 3))
        self._grain = _grain(style, size) if style.filter == "film" else None
        self._offsets = np.random.default_rng(style.seed + 1)

    def __call__(self, rgb: ByteArray) -> ByteArray:
        filtered = _FILTERS[self.style.filter](rgb, self.style, self.video)
        graded = u8(cv2.LUT(filtered, self._table))
        grey = cv2.cvtColor(cv2.cvtColor(graded, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        amount = self.style.saturation
        saturated = cv2.addWeighted(graded, amount, grey, 1.0 - amount, 0.0)
        result = u8(cv2.multiply(saturated, self._vignette, scale=1 / 255))
        return result if self._grain is None else self._grainy(result)

    def _grainy(self, rgb: ByteArray) -> ByteArray:
        """Add the grain at a new random offset each frame, so that it flickers like film."""
        assert self._grain is not None
        x, y = (int(v) for v in self._offsets.integers(0, _GRAIN_SLACK, 2))
        window = np.s_[y : y + rgb.shape[0], x : x + rgb.shape[1]]
        positive, negative = self._grain[0][window], self._grain[1][window]
        return u8(cv2.subtract(cv2.add(rgb, positive), negative))


# ------------------------------------------------------------------------------- API


def _ratio(aspect: tuple[int, int]) -> str:
    return f"{aspect[0]}:{aspect[1]}"


def transform_images(
    prompt: str,
    images: Sequence[bytes],
    *,
    aspect: tuple[int, int],
    index: int,
    long_side: int = 1024,
) -> Artifact:
    """A PNG made from the reference ``images`` at ``aspect``, seeded by prompt and index.

    At most :data:`MAX_REFERENCES` images are used. ValueError when there is none, or one is
    not a decodable image (or is over 40 MP).
    """
    if not images:
        raise ValueError("no reference image was given; send at least one")
    size = fit_size(*aspect, long_side)
    pictures = [decode_rgb(data, max_side=max(size)) for data in images[:MAX_REFERENCES]]
    rng = rng_for(prompt, index)
    canvas, layout = _compose(pictures, size, rng)
    style = make_style(prompt, index)
    pixels = Stylizer(style, size)(canvas)
    plural = "s" if len(pictures) > 1 else ""
    what = (
        f"{layout} reference image{plural} at {_ratio(aspect)} ({size[0]}x{size[1]}), styled with "
        f"{style.summary} by OpenCV, seeded by the prompt and variation {index + 1}"
    )
    return Artifact(encode_png(pixels), "png", size[0], size[1], description=describe(what))


def render_image(
    prompt: str, *, aspect: tuple[int, int], index: int, long_side: int = 1024
) -> Artifact:
    """The procedural renderer's PNG for a prompt-only request, at ``aspect``."""
    width, height = fit_size(*aspect, long_side)
    data = render_png(prompt, index, width, height)
    what = (
        f"Procedural gradient art seeded by the prompt, with the prompt printed on it, at "
        f"{_ratio(aspect)} ({width}x{height}), drawn by Hatchery's renderer"
    )
    return Artifact(data, "png", width, height, description=describe(what))
