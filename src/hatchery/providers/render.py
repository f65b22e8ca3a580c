"""Procedural renderer behind the built-in ``local`` provider.

This is not an AI model. It draws deterministic procedural art so that the whole product
(jobs, storage, webhooks, downloads, the web UI) works offline and in tests without any
external service or model weights:

* a smooth multi-colour gradient with a few soft, seeded blobs, computed with numpy on a
  small grid and upscaled with Pillow (fast even at 4096x2304);
* the prompt, word-wrapped (ellipsised when too long) on a semi-opaque dark band, plus a
  small "hatchery local renderer" caption;
* reference images, if any, as thumbnails in the top-left corner and as a colour tint
  blended into the background.

Images are seeded from ``sha256(index, prompt)`` so the same inputs give byte-identical
PNGs. Videos animate the same scene (the gradient anchors and the blobs orbit slowly).
Video frames are built directly in BT.709 limited-range YUV 4:2:0 (the small background grid
is converted, then each plane is upscaled; the text layer is converted once), encoded with
libx264 and remuxed "faststart" (``moov`` before ``mdat``) so browsers can stream them.

Everything here is pure CPU work: no files, no network, no global state.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import struct
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

__all__ = [
    "ReferenceImageError",
    "decode_reference",
    "faststart",
    "image_size",
    "render_mp4",
    "render_png",
    "video_size",
]

FloatArray = npt.NDArray[np.float64]
ByteArray = npt.NDArray[np.uint8]
WordArray = npt.NDArray[np.uint16]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

MAX_REFERENCE_PIXELS = 40_000_000
"""Reference images above this many pixels are refused (decompression-bomb guard)."""

_IMAGE_LONG_SIDE = {"1k": 1024, "2k": 2048, "4k": 4096}
_VIDEO_LANDSCAPE = {"1k": (1280, 720), "2k": (1920, 1080), "4k": (3840, 2160)}
_ASPECT_RATIOS = ("16:9", "9:16")
_REFERENCE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")

_IMAGE_GRID = 160  # long side of the grid the background is computed on, then upscaled
_VIDEO_GRID = 96  # smaller for video: it is recomputed for every frame
_ANCHORS = 5
_BLOBS = 6
_MAX_TEXT_LINES = 3
_MAX_PROMPT_CHARS = 2000  # more than can ever fit in the band
_ELLIPSIS = "\u2026"
_BAND_RGBA = (8, 10, 20, 165)
_TEXT_RGB = (255, 255, 255)
_CAPTION_RGB = (200, 204, 214)
_REFERENCE_TINT = 0.3
_PNG_COMPRESS_LEVEL = 3
_VIDEO_CRF = 28
_CONTAINER_ATOMS = (b"trak", b"mdia", b"minf", b"stbl")  # on the path moov -> stco/co64


class ReferenceImageError(ValueError):
    """Bytes that are not a decodable image."""


# --------------------------------------------------------------------------- sizes


def _check_aspect(aspect_ratio: str) -> None:
    if aspect_ratio not in _ASPECT_RATIOS:
        raise ValueError(f"unknown aspect ratio {aspect_ratio!r}; expected one of {_ASPECT_RATIOS}")


def _oriented(landscape: tuple[int, int], aspect_ratio: str) -> tuple[int, int]:
    _check_aspect(aspect_ratio)
    long_side, short_side = landscape
    return (long_side, short_side) if aspect_ratio == "16:9" else (short_side, long_side)


def image_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Pixel size ``(width, height)`` of an image: long side 1024/2048/4096 for 1k/2k/4k."""
    if resolution not in _IMAGE_LONG_SIDE:
        raise ValueError(f"unknown resolution {resolution!r}; expected 1k, 2k or 4k")
    long_side = _IMAGE_LONG_SIDE[resolution]
    return _oriented((long_side, round(long_side * 9 / 16)), aspect_ratio)


def video_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Frame size ``(width, height)`` of a video: 720p/1080p/2160p for 1k/2k/4k."""
    if resolution not in _VIDEO_LANDSCAPE:
        raise ValueError(f"unknown resolution {resolution!r}; expected 1k, 2k or 4k")
    return _oriented(_VIDEO_LANDSCAPE[resolution], aspect_ratio)


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")


# ----------------------------------------------------------------------- references


def _open_image(data: bytes) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data), formats=_REFERENCE_FORMATS)
        except Image.DecompressionBombError as exc:
            raise ReferenceImageError("reference image is too large") from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise ReferenceImageError("reference is not an image Pillow can decode") from exc


def _flatten(image: Image.Image) -> Image.Image:
    """RGB version of ``image``; transparent areas become mid grey."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        return Image.alpha_composite(backdrop, rgba).convert("RGB")
    return image.convert("RGB")


def decode_reference(data: bytes) -> Image.Image:
    """Decode reference-image bytes to an RGB image (EXIF orientation applied).

    Raises :class:`ReferenceImageError` for bytes Pillow cannot decode and for images
    larger than :data:`MAX_REFERENCE_PIXELS` (checked before the pixels are decoded).
    """
    image = _open_image(data)
    width, height = image.size
    if width * height > MAX_REFERENCE_PIXELS:
        raise ReferenceImageError(
            f"reference image is too large ({width}x{height} > {MAX_REFERENCE_PIXELS} pixels)"
        )
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
        return _flatten(upright)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ReferenceImageError("reference is not an image Pillow can decode") from exc


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale and centre-crop ``image`` so that it exactly covers ``size``."""
    width, height = image.size
    scale = max(size[0] / width, size[1] / height)
    crop_w, crop_h = size[0] / scale, size[1] / scale
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    rgb = image.convert("RGB")
    return rgb.resize(size, Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)


def _reference_tint(references: Sequence[Image.Image], grid: tuple[int, int]) -> FloatArray | None:
    """The first reference on the background grid, as floats in [0, 1]."""
    if not references:
        return None
    tint: FloatArray = np.asarray(_cover(references[0], grid), dtype=np.float64) / 255.0
    return tint


# ------------------------------------------------------------------------ background


@dataclass(frozen=True)
class _Movers:
    """Points that orbit a base position: ``base + radius * (cos, sin)(phase + speed * t)``."""

    base: FloatArray  # (n, 2) in the unit square, scaled by the grid extent
    orbit: FloatArray  # (n, 3): radius (long-side units), phase (rad), speed (rad/s)

    def at(self, t: float, extent: FloatArray) -> FloatArray:
        angle = self.orbit[:, 1] + self.orbit[:, 2] * t
        offset = np.stack([np.cos(angle), np.sin(angle)], axis=1) * self.orbit[:, :1]
        result: FloatArray = self.base * extent + offset
        return result


@dataclass(frozen=True)
class _Scene:
    colors: FloatArray  # (anchors, 3) gradient anchor colours in [0, 1]
    anchors: _Movers
    spread: float  # softness of the blend between anchor colours
    blob_colors: FloatArray  # (blobs, 3)
    blob_radius: FloatArray  # (blobs,) in long-side units
    blob_alpha: FloatArray  # (blobs,)
    blobs: _Movers


@dataclass(frozen=True)
class _Grid:
    shape: tuple[int, int]  # (width, height) of the background grid
    xs: FloatArray  # (1, width) x coordinates in long-side units
    ys: FloatArray  # (height, 1)
    extent: FloatArray  # (2,) size of the grid in long-side units


def _rng(prompt: str, index: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{index}\x00{prompt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def _palette(rng: np.random.Generator, count: int, value: tuple[float, float]) -> FloatArray:
    base_hue = rng.random()
    spread = rng.uniform(0.25, 0.6)  # from analogous to near-complementary palettes
    colors = [
        colorsys.hsv_to_rgb(
            (base_hue + spread * rng.uniform(-1.0, 1.0)) % 1.0,
            rng.uniform(0.45, 0.9),
            rng.uniform(*value),
        )
        for _ in range(count)
    ]
    return np.array(colors, dtype=np.float64)


def _movers(rng: np.random.Generator, count: int, radius: tuple[float, float]) -> _Movers:
    period = rng.uniform(5.0, 12.0, count) * rng.choice([-1.0, 1.0], count)
    orbit = np.stack(
        [rng.uniform(*radius, count), rng.uniform(0, 2 * math.pi, count), 2 * math.pi / period],
        axis=1,
    )
    return _Movers(base=rng.random((count, 2)), orbit=orbit)


def _make_scene(rng: np.random.Generator) -> _Scene:
    return _Scene(
        colors=_palette(rng, _ANCHORS, (0.55, 0.95)),
        anchors=_movers(rng, _ANCHORS, (0.04, 0.14)),
        spread=float(rng.uniform(0.14, 0.26)),
        blob_colors=_palette(rng, _BLOBS, (0.35, 1.0)),
        blob_radius=rng.uniform(0.05, 0.16, _BLOBS),
        blob_alpha=rng.uniform(0.35, 0.8, _BLOBS),
        blobs=_movers(rng, _BLOBS, (0.03, 0.1)),
    )


def _make_grid(width: int, height: int, long_side: int) -> _Grid:
    scale = min(1.0, long_side / max(width, height))
    grid_w, grid_h = max(2, round(width * scale)), max(2, round(height * scale))
    unit = max(grid_w, grid_h)
    return _Grid(
        shape=(grid_w, grid_h),
        xs=(np.arange(grid_w, dtype=np.float64) + 0.5)[None, :] / unit,
        ys=(np.arange(grid_h, dtype=np.float64) + 0.5)[:, None] / unit,
        extent=np.array([grid_w / unit, grid_h / unit]),
    )


def _gradient(scene: _Scene, grid: _Grid, t: float) -> FloatArray:
    """Soft blend of the anchor colours: each cell leans to its nearest anchors."""
    points = scene.anchors.at(t, grid.extent)
    dist2 = (grid.xs[None] - points[:, 0, None, None]) ** 2
    dist2 = dist2 + (grid.ys[None] - points[:, 1, None, None]) ** 2  # (anchors, h, w)
    weights = np.exp((dist2.min(axis=0) - dist2) / (2 * scene.spread**2))
    field: FloatArray = np.tensordot(weights, scene.colors, axes=(0, 0))  # (h, w, 3)
    field /= weights.sum(axis=0)[..., None]
    field *= 1.08 - 0.22 * (grid.ys / grid.extent[1])[..., None]  # gentle top-down light
    return field


def _add_blobs(field: FloatArray, scene: _Scene, grid: _Grid, t: float) -> None:
    points = scene.blobs.at(t, grid.extent)
    for (px, py), radius, color, alpha in zip(
        points, scene.blob_radius, scene.blob_colors, scene.blob_alpha, strict=True
    ):
        dist = np.sqrt((grid.xs - px) ** 2 + (grid.ys - py) ** 2)
        cover = np.clip((radius - dist) / (0.3 * radius), 0.0, 1.0) * alpha
        field += (color - field) * cover[..., None]


def _field(scene: _Scene, grid: _Grid, t: float, tint: FloatArray | None) -> FloatArray:
    """The background at time ``t`` on the grid: RGB floats, (h, w, 3), about [0, 1]."""
    field = _gradient(scene, grid, t)
    _add_blobs(field, scene, grid, t)
    if tint is not None:
        field = field * (1.0 - _REFERENCE_TINT) + tint * _REFERENCE_TINT
    return field


def _to_bytes(values: FloatArray) -> ByteArray:
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def _upscale(channels: ByteArray, size: tuple[int, int], method: Image.Resampling) -> ByteArray:
    """Resize an (h, w) or (h, w, 3) byte array to ``size`` (width, height)."""
    small = Image.fromarray(np.ascontiguousarray(channels))
    return np.asarray(small.resize(size, method))


# ----------------------------------------------------------------------- overlay

Layer = tuple[Image.Image, int, int]  # an RGBA image and its top-left position


@dataclass(frozen=True)
class _Patch:
    """A pre-multiplied layer placed at (x, y), ready for integer alpha blending."""

    x: int
    y: int
    premultiplied: WordArray  # (h, w, channels): colour * alpha + 127, alpha in 0..255
    inverse_alpha: WordArray  # (h, w, 1): 255 - alpha


def _rgb_patch(layer: Layer) -> _Patch:
    image, x, y = layer
    rgba = np.asarray(image.convert("RGBA"), dtype=np.uint16)
    alpha = rgba[..., 3:]
    return _Patch(x, y, rgba[..., :3] * alpha + 127, 255 - alpha)


def _composite(frame: ByteArray, patches: Iterable[_Patch]) -> None:
    """Alpha-blend ``patches`` onto ``frame`` (h, w, channels) in place."""
    for patch in patches:
        height, width = patch.inverse_alpha.shape[:2]
        region = frame[patch.y : patch.y + height, patch.x : patch.x + width]
        region[...] = (region * patch.inverse_alpha + patch.premultiplied) // 255


def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _hard_break(word: str, font: Font, max_width: float) -> list[str]:
    """Split a word wider than ``max_width`` into pieces that fit (at least one char each)."""
    pieces: list[str] = []
    while font.getlength(word) > max_width and len(word) > 1:
        low, high = 1, len(word) - 1  # binary search for the longest fitting prefix
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if font.getlength(word[:mid]) <= max_width else (low, mid - 1)
        pieces.append(word[:low])
        word = word[low:]
    pieces.append(word)
    return pieces


def _ellipsize(line: str, font: Font, max_width: float) -> str:
    while line and font.getlength(line + _ELLIPSIS) > max_width:
        line = line[:-1]
    return line.rstrip() + _ELLIPSIS


def _wrap(text: str, font: Font, max_width: float, max_lines: int) -> list[str]:
    """Word-wrap ``text`` to ``max_width``; ellipsise the last line if it does not all fit."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        *full, current = _hard_break(word, font, max_width)
        lines.extend(full)
        if len(lines) > max_lines:
            break
    if current:
        lines.append(current)
    if len(lines) <= max_lines:
        return lines
    return [*lines[: max_lines - 1], _ellipsize(lines[max_lines - 1], font, max_width)]


def _printable(text: str) -> str:
    """Collapse whitespace and drop control characters (they would draw as boxes)."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _text_band(prompt: str, caption: str, width: int, height: int) -> Layer:
    """The dark band at the bottom with the wrapped prompt and the caption."""
    size = max(10, round(min(width, height) / 18))
    pad, line_height = round(size * 0.6), round(size * 1.25)
    caption_size = max(8, round(size * 0.5))
    font, caption_font = _font(size), _font(caption_size)
    text = _printable(prompt[:_MAX_PROMPT_CHARS])
    lines = _wrap(text, font, width - 2 * pad, _MAX_TEXT_LINES)
    band_height = min(height, 2 * pad + len(lines) * line_height + round(caption_size * 1.4))
    band = Image.new("RGBA", (width, band_height), _BAND_RGBA)
    ink = Image.new("RGBA", band.size, (*_TEXT_RGB, 0))
    draw = ImageDraw.Draw(ink)
    for row, line in enumerate(lines):
        draw.text((pad, pad + row * line_height), line, font=font, fill=(*_TEXT_RGB, 255))
    caption_y = pad + len(lines) * line_height
    draw.text((pad, caption_y), caption, font=caption_font, fill=(*_CAPTION_RGB, 255))
    return Image.alpha_composite(band, ink), 0, height - band_height


def _thumbnail(reference: Image.Image, box: int, border: int) -> Image.Image:
    width, height = reference.size
    scale = (box - 2 * border) / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    inner = reference.convert("RGB").resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    framed = Image.new("RGBA", (size[0] + 2 * border, size[1] + 2 * border), (245, 245, 245, 255))
    framed.paste(inner, (border, border))
    return framed


def _thumbnails(
    references: Sequence[Image.Image], width: int, height: int, limit: int
) -> list[Layer]:
    """Up to ``limit`` framed thumbnails in a row from the top-left corner."""
    box = max(8, round(min(width, height) * 0.22))
    margin, border = max(2, box // 8), max(1, box // 40)
    layers: list[Layer] = []
    x = margin
    for reference in references[:limit]:
        thumb = _thumbnail(reference, box, border)
        if x + thumb.width > width or margin + thumb.height > height:
            break
        layers.append((thumb, x, margin))
        x += thumb.width + margin
    return layers


def _overlay(
    prompt: str, caption: str, size: tuple[int, int], references: Sequence[Image.Image], limit: int
) -> list[Layer]:
    width, height = size
    return [*_thumbnails(references, width, height, limit), _text_band(prompt, caption, *size)]


# ---------------------------------------------------------------------------- PNG


def render_png(
    prompt: str,
    index: int,
    width: int,
    height: int,
    references: Sequence[Image.Image] = (),
) -> bytes:
    """Render image ``index`` (0-based) for ``prompt`` as PNG bytes of ``width`` x ``height``.

    Deterministic: the same arguments (and reference pixels) give byte-identical output.
    """
    _check_size(width, height)
    grid = _make_grid(width, height, _IMAGE_GRID)
    scene = _make_scene(_rng(prompt, index))
    field = _field(scene, grid, 0.0, _reference_tint(references, grid.shape))
    pixels = _upscale(_to_bytes(field * 255.0), (width, height), Image.Resampling.BICUBIC).copy()
    caption = f"hatchery local renderer #{index + 1}"
    layers = _overlay(prompt, caption, (width, height), references, limit=4)
    _composite(pixels, map(_rgb_patch, layers))
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return out.getvalue()


# ---------------------------------------------------------------------- video frames

# RGB in [0, 1] -> BT.709 limited-range Y'CbCr in 0..255 units: yuv = rgb @ _BT709.T + offset
_BT709 = np.array(
    [[0.2126, 0.7152, 0.0722], [-0.1146, -0.3854, 0.5], [0.5, -0.4542, -0.0458]]
) * np.array([[219.0], [224.0], [224.0]])
_BT709_OFFSET = np.array([16.0, 128.0, 128.0])


def _to_yuv(rgb: FloatArray) -> FloatArray:
    yuv: FloatArray = rgb @ _BT709.T + _BT709_OFFSET
    return yuv


def _halve(values: FloatArray) -> FloatArray:
    """2x2 box downsample of an (h, w, c) array with even h and w."""
    height, width, channels = values.shape
    blocks = values.reshape(height // 2, 2, width // 2, 2, channels)
    result: FloatArray = blocks.mean(axis=(1, 3))
    return result


def _even_layer(layer: Layer) -> Layer:
    """Pad a layer with transparency so that its position and size are even (4:2:0 chroma)."""
    image, x, y = layer
    left, top = x % 2, y % 2
    width, height = image.width + left, image.height + top
    padded = Image.new("RGBA", (width + width % 2, height + height % 2), (0, 0, 0, 0))
    padded.paste(image.convert("RGBA"), (left, top))
    return padded, x - left, y - top


def _float_patch(premultiplied: FloatArray, alpha: FloatArray, x: int, y: int) -> _Patch:
    """``premultiplied`` is value * alpha (value in 0..255, alpha in [0, 1])."""
    weight = np.rint(alpha * 255.0).astype(np.uint16)
    scaled = (np.rint(premultiplied * 255.0) + 127).astype(np.uint16)
    return _Patch(x, y, scaled, 255 - weight)


def _yuv_patches(layer: Layer) -> tuple[_Patch, _Patch, _Patch]:
    """The layer as (Y, Cb, Cr) patches; chroma patches are at half resolution."""
    image, x, y = _even_layer(layer)
    rgba = np.asarray(image, dtype=np.float64) / 255.0
    alpha = rgba[..., 3:]
    premultiplied = _to_yuv(rgba[..., :3]) * alpha
    half_alpha, half = _halve(alpha), _halve(premultiplied[..., 1:])
    return (
        _float_patch(premultiplied[..., :1], alpha, x, y),
        _float_patch(half[..., :1], half_alpha, x // 2, y // 2),
        _float_patch(half[..., 1:], half_alpha, x // 2, y // 2),
    )


@dataclass(frozen=True)
class _YuvCanvas:
    """A reusable yuv420p frame buffer plus (h, w, 1) views of its three planes."""

    buffer: ByteArray  # (height * 3 / 2, width): the layout av.VideoFrame.from_ndarray wants
    planes: tuple[ByteArray, ByteArray, ByteArray]
    overlay: tuple[list[_Patch], list[_Patch], list[_Patch]]


def _yuv_canvas(width: int, height: int, layers: Sequence[Layer]) -> _YuvCanvas:
    flat = np.empty(width * height * 3 // 2, dtype=np.uint8)
    luma, chroma = width * height, width * height // 4
    planes = (
        flat[:luma].reshape(height, width, 1),
        flat[luma : luma + chroma].reshape(height // 2, width // 2, 1),
        flat[luma + chroma :].reshape(height // 2, width // 2, 1),
    )
    overlay: tuple[list[_Patch], list[_Patch], list[_Patch]] = ([], [], [])
    for layer in layers:
        for patches, patch in zip(overlay, _yuv_patches(layer), strict=True):
            patches.append(patch)
    return _YuvCanvas(flat.reshape(-1, width), planes, overlay)


def _paint(canvas: _YuvCanvas, field: FloatArray) -> None:
    """Upscale the background field into the canvas planes, then blend the overlay."""
    yuv = _to_bytes(_to_yuv(field))
    for channel, (plane, patches) in enumerate(zip(canvas.planes, canvas.overlay, strict=True)):
        height, width = plane.shape[:2]
        plane[..., 0] = _upscale(yuv[..., channel], (width, height), Image.Resampling.BILINEAR)
        _composite(plane, patches)


def _frames(
    prompt: str, duration: int, size: tuple[int, int], references: Sequence[Image.Image], fps: int
) -> Iterator[av.VideoFrame]:
    grid = _make_grid(*size, _VIDEO_GRID)
    scene = _make_scene(_rng(prompt, 0))
    tint = _reference_tint(references, grid.shape)
    caption = f"hatchery local renderer \u00b7 {duration}s video"
    canvas = _yuv_canvas(*size, _overlay(prompt, caption, size, references, limit=1))
    for number in range(duration * fps):
        _paint(canvas, _field(scene, grid, number / fps, tint))
        frame = av.VideoFrame.from_ndarray(canvas.buffer, format="yuv420p")  # copies
        frame.pts, frame.time_base = number, Fraction(1, fps)
        yield frame


# ---------------------------------------------------------------------------- MP4


def _atoms(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """``(type, start, header size, end)`` of each MP4 atom in ``data[start:end]``."""
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, position)
        header = 8
        if size == 1:  # 64-bit size follows the type
            (size,) = struct.unpack_from(">Q", data, position + 8)
            header = 16
        elif size == 0:  # extends to the end
            size = end - position
        if size < header or position + size > end:
            raise ValueError("malformed MP4 atom")
        yield kind, position, header, position + size
        position += size


def _shift_chunk_offsets(moov: bytearray, start: int, end: int, delta: int) -> None:
    """Add ``delta`` to every chunk offset (stco / co64 tables) inside ``moov[start:end]``."""
    for kind, position, header, stop in _atoms(moov, start, end):
        if kind in _CONTAINER_ATOMS:
            _shift_chunk_offsets(moov, position + header, stop, delta)
        elif kind in (b"stco", b"co64"):
            body = position + header  # version/flags (4 bytes), entry count (4), entries
            (count,) = struct.unpack_from(">I", moov, body + 4)
            dtype = np.dtype(">u4" if kind == b"stco" else ">u8")
            table = np.frombuffer(moov, dtype=dtype, count=count, offset=body + 8)
            if count and int(table.max()) + delta >= 2 ** (8 * dtype.itemsize):
                raise ValueError("chunk offset overflow")
            table += dtype.type(delta)


def faststart(data: bytes) -> bytes:
    """Move the ``moov`` atom in front of ``mdat`` (what ``-movflags +faststart`` does)."""
    atoms: dict[bytes, tuple[int, int, int]] = {}
    for kind, position, header, end in _atoms(data, 0, len(data)):
        atoms.setdefault(kind, (position, header, end))  # the first of each kind
    if b"moov" not in atoms or b"mdat" not in atoms or atoms[b"moov"][0] < atoms[b"mdat"][0]:
        return data
    moov_start, header, moov_end = atoms[b"moov"]
    mdat_start = atoms[b"mdat"][0]
    moov = bytearray(data[moov_start:moov_end])
    _shift_chunk_offsets(moov, header, len(moov), len(moov))
    return b"".join((data[:mdat_start], moov, data[mdat_start:moov_start], data[moov_end:]))


def _encode(frames: Iterable[av.VideoFrame], width: int, height: int, fps: int) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as mp4:
        stream = mp4.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": str(_VIDEO_CRF)}
        context = stream.codec_context
        context.gop_size = 2 * fps  # a keyframe every 2 s keeps seeking snappy
        context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
        context.color_range = 1  # limited ("tv") range
        for frame in frames:
            mp4.mux(stream.encode(frame))
        mp4.mux(stream.encode(None))  # flush the frames the encoder still holds
    return faststart(out.getvalue())


def _check_video(duration: int, width: int, height: int, fps: int) -> None:
    _check_size(width, height)
    if width % 2 or height % 2:
        raise ValueError(f"video dimensions must be even, got {width}x{height}")
    if duration < 1 or fps < 1:
        raise ValueError(f"duration and fps must be positive, got {duration}s at {fps} fps")


def render_mp4(
    prompt: str,
    duration: int,
    width: int,
    height: int,
    references: Sequence[Image.Image] = (),
    fps: int = 24,
) -> bytes:
    """Render a ``duration``-second H.264 MP4 (``duration * fps`` frames) for ``prompt``.

    yuv420p, BT.709 tagged, ``moov`` atom first; ``width`` and ``height`` must be even.
    """
    _check_video(duration, width, height, fps)
    frames = _frames(prompt, duration, (width, height), references, fps)
    return _encode(frames, width, height, fps)
