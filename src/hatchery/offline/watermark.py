"""A visible mark on image and video outputs, applied by the engine to any provider's output.

The mark is a badge in the bottom-right corner: the text in white on a rounded, semi-opaque
dark plate, drawn with Pillow's built-in scalable font at 4.5 % of the picture's short side (at
least 10 px), with a margin of 2.5 %. It is readable on any background and scales with the
picture.

* PNG, JPEG, WebP: the badge is composited on the decoded picture (EXIF orientation applied),
  written back in the same format; transparency is kept (the badge itself is opaque enough to
  show on transparent areas). GIF is returned unchanged (animation would be lost).
* SVG: a ``<g>`` with a ``<rect>`` and a ``<text>`` is inserted before the closing ``</svg>``,
  placed and sized from the root's ``viewBox`` (else its ``width``/``height``).
* MP4, MOV, WebM: every frame is re-encoded with the badge (H.264; WebM as VP9; videos with
  alpha keep it: VP9 ``yuva420p`` in WebM, ProRes 4444 in MOV), at the same frame count and
  rate, with the sound re-encoded (AAC, Opus in WebM). Videos up to :data:`MAX_SECONDS` long
  and 7680x4320 are marked; re-encoding takes roughly real time at 1080p on two cores.
* Anything else (MP3, WAV ...) is returned unchanged.

The artifact's description is left as it was.
"""

from __future__ import annotations

import dataclasses
import io
import re
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hatchery.offline.frames import ByteArray, Size, decode_image, read_video, write_video
from hatchery.providers.base import Artifact

__all__ = ["MAX_SECONDS", "mark"]

MAX_SECONDS = 600.0
_MAX_VIDEO_PIXELS = 7680 * 4320
_TEXT_SIZE = 0.045  # of the short side
_MARGIN = 0.025
_PLATE = (12, 12, 16, 165)
_INK = (255, 255, 255, 240)
_IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
_VIDEO_CONTAINERS = {"mp4": "mp4", "mov": "mov", "webm": "webm"}
_SAVE_OPTIONS: dict[str, dict[str, int]] = {
    "PNG": {"compress_level": 3},
    "JPEG": {"quality": 92},
    "WEBP": {"quality": 90},
}
_SVG_ROOT = re.compile(r"<svg\b[^>]*>")
_NUMBER = r"\s*=\s*[\"']\s*([0-9]*\.?[0-9]+)"


def mark(artifact: Artifact, text: str = "Hatchery") -> Artifact:
    """``artifact`` with a visible ``text`` badge, in the same format (see the module doc).

    ValueError when an image or video artifact cannot be decoded.
    """
    extension = artifact.extension.lower()
    if extension in _IMAGE_FORMATS:
        return _mark_image(artifact, text, _IMAGE_FORMATS[extension])
    if extension == "svg":
        return _mark_svg(artifact, text)
    if extension in _VIDEO_CONTAINERS:
        return _mark_video(artifact, text, _VIDEO_CONTAINERS[extension])
    return artifact


# ---------------------------------------------------------------------------------- badge


def _badge(text: str, size: Size) -> tuple[Image.Image, tuple[int, int]]:
    """The badge for a picture of ``size`` and its top-left corner (may be cropped to fit)."""
    short = min(size)
    font = ImageFont.load_default(size=max(10, round(short * _TEXT_SIZE)))
    left, top, right, bottom = (round(edge) for edge in font.getbbox(text))
    pad = max(3, round((bottom - top) * 0.45))
    width, height = right - left + 2 * pad, bottom - top + 2 * pad
    badge = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(badge)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=pad, fill=_PLATE)
    draw.text((pad - left, pad - top), text, font=font, fill=_INK)
    margin = max(2, round(short * _MARGIN))
    x, y = max(0, size[0] - width - margin), max(0, size[1] - height - margin)
    return badge.crop((0, 0, min(width, size[0] - x), min(height, size[1] - y))), (x, y)


def _stamp(pixels: ByteArray, badge: Image.Image, corner: tuple[int, int]) -> ByteArray:
    """``pixels`` (RGB or RGBA) with ``badge`` composited at ``corner``."""
    x, y = corner
    region = pixels[y : y + badge.height, x : x + badge.width]
    below = Image.fromarray(np.ascontiguousarray(region)).convert("RGBA")
    marked = np.asarray(Image.alpha_composite(below, badge))
    result = pixels.copy()
    result[y : y + badge.height, x : x + badge.width] = marked[..., : pixels.shape[2]]
    return result


# --------------------------------------------------------------------------------- images


def _mark_image(artifact: Artifact, text: str, kind: str) -> Artifact:
    pixels = decode_image(artifact.data)
    height, width = pixels.shape[:2]
    badge, corner = _badge(text, (width, height))
    marked = Image.fromarray(_stamp(pixels, badge, corner))
    if kind == "JPEG" and marked.mode == "RGBA":
        marked = marked.convert("RGB")
    out = io.BytesIO()
    marked.save(out, format=kind, **_SAVE_OPTIONS[kind])
    return dataclasses.replace(artifact, data=out.getvalue(), width=width, height=height)


# ------------------------------------------------------------------------------------ SVG


def _svg_number(tag: str, name: str) -> float | None:
    found = re.search(r"\s" + name + _NUMBER, tag)
    return float(found[1]) if found else None


def _svg_box(tag: str, artifact: Artifact) -> tuple[float, float, float, float]:
    """``(x, y, width, height)`` of the drawing in user units."""
    view = re.search(r"\sviewBox\s*=\s*[\"']([^\"']*)[\"']", tag)
    parts = view[1].replace(",", " ").split() if view else []
    try:
        x, y, width, height = (float(part) for part in parts)
        if width > 0 and height > 0:
            return x, y, width, height
    except ValueError:  # not four numbers
        pass
    width = _svg_number(tag, "width") or float(artifact.width or 1024)
    height = _svg_number(tag, "height") or float(artifact.height or 1024)
    return 0.0, 0.0, width, height


def _svg_badge(text: str, box: tuple[float, float, float, float]) -> str:
    x, y, width, height = box
    font = min(width, height) * _TEXT_SIZE
    margin, pad = min(width, height) * _MARGIN, font * 0.45
    plate_w, plate_h = 0.62 * font * len(text) + 2 * pad, font + 2 * pad
    left, top = x + width - margin - plate_w, y + height - margin - plate_h
    return (
        f'<g class="hatchery-mark"><rect x="{left:.2f}" y="{top:.2f}" width="{plate_w:.2f}" '
        f'height="{plate_h:.2f}" rx="{pad:.2f}" fill="#0c0c10" fill-opacity="0.65"/>'
        f'<text x="{left + plate_w / 2:.2f}" y="{top + pad + 0.82 * font:.2f}" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-size="{font:.2f}" '
        f'text-anchor="middle" fill="#ffffff" fill-opacity="0.95">{escape(text)}</text></g>\n'
    )


def _mark_svg(artifact: Artifact, text: str) -> Artifact:
    try:
        svg = artifact.data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the SVG is not UTF-8 text") from None
    root, end = _SVG_ROOT.search(svg), svg.rfind("</svg>")
    if root is None or end < 0:
        raise ValueError("the SVG has no <svg> root element")
    badge = _svg_badge(text, _svg_box(root[0], artifact))
    data = (svg[:end] + badge + svg[end:]).encode()
    return dataclasses.replace(artifact, data=data)


# ---------------------------------------------------------------------------------- video


def _mark_video(artifact: Artifact, text: str, container: str) -> Artifact:
    clip = read_video(artifact.data, max_seconds=MAX_SECONDS, max_pixels=_MAX_VIDEO_PIXELS)
    alpha = clip.has_alpha and container != "mp4"
    size = (max(2, clip.width - clip.width % 2), max(2, clip.height - clip.height % 2))
    badge, corner = _badge(text, size)
    frames = (_stamp(frame, badge, corner) for frame in clip.frames(size, alpha=alpha))
    data = write_video(frames, clip.fps, size, container=container, alpha=alpha, audio=clip.audio)
    return dataclasses.replace(artifact, data=data, width=size[0], height=size[1])
