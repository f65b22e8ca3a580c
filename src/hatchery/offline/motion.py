"""Video clips by classical image processing (not an AI model): Ken Burns, restyling, procedural.

* :func:`animate_images` - the **Ken Burns effect**: each reference image is smart-cropped
  (see :mod:`hatchery.offline.reference`) to a canvas 1.35 times the frame, and a virtual
  camera glides between two seeded framings of it (zooming in towards its most salient point,
  or out of it, while panning), one ``cv2.warpAffine`` per frame with an eased (smoothstep)
  path. Consecutive images cross-fade (up to 0.75 s). H.264 MP4 at 24 fps.
* :func:`transform_video` - re-frames a video to the asked aspect ratio (one cover crop for the
  whole clip, placed on the salient window of its first frame) and restyles every frame with
  the seeded :class:`~hatchery.offline.reference.Stylizer` (video variants of its filters:
  per-frame cost stays in the tens of milliseconds at 720p). The frame count and rate and
  the sound (re-encoded to AAC) are kept.
* :func:`render_clip` - the procedural renderer of :mod:`hatchery.providers.render` for a
  prompt-only request.

Each takes ``audio``: the bytes of a soundtrack (any audio file PyAV reads) muxed in as AAC,
trimmed or padded with silence to the clip. Caps: clips of at most :data:`MAX_SECONDS`; at
most :data:`MAX_ANIMATED` images animated (and at least a second for each); input videos of
at most 3840x2160 (:data:`MAX_INPUT_PIXELS`); a restyled video is never larger than the
largest window of the asked aspect inside its source (it crops, never upscales: that is
:func:`hatchery.offline.upscale.upscale_video`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from hatchery.offline.frames import (
    ByteArray,
    Clip,
    Size,
    decode_rgb,
    describe,
    even,
    fit_size,
    mux_audio,
    read_video,
    u8,
    write_mp4,
)
from hatchery.offline.reference import (
    Stylizer,
    make_style,
    rng_for,
    saliency,
    salient_window,
    smart_crop,
)
from hatchery.providers.base import Artifact
from hatchery.providers.render import render_mp4

__all__ = [
    "FPS",
    "MAX_ANIMATED",
    "MAX_INPUT_PIXELS",
    "MAX_SECONDS",
    "animate_images",
    "render_clip",
    "transform_video",
]

FPS = 24
MAX_SECONDS = 60.0
"""The longest clip made, and the default longest video read."""
MAX_ANIMATED = 8
"""Reference images beyond this many are not animated."""
MAX_INPUT_PIXELS = 3840 * 2160

_CANVAS = 1.35  # the canvas a shot is cut from, relative to the frame
_MIN_ZOOM_CHANGE = 0.15
_FADE_SECONDS = 0.75


def _check_seconds(seconds: float) -> None:
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"a clip lasts more than 0 and at most {MAX_SECONDS:g} s, got {seconds:g}")


def _ratio(aspect: tuple[int, int]) -> str:
    return f"{aspect[0]}:{aspect[1]}"


def _with_sound(what: str, audio: bytes | None, kept: bool = False) -> str:
    if audio is not None:
        return f"{what}, with the given soundtrack"
    return f"{what}, its sound kept" if kept else what


# ------------------------------------------------------------------------- Ken Burns

Rect = tuple[float, float, float, float]  # x, y, width, height in canvas pixels


@dataclass(frozen=True)
class _Shot:
    canvas: ByteArray  # the picture cropped to the frame aspect, _CANVAS times the frame
    start: Rect
    end: Rect


def _salient_point(canvas: ByteArray) -> tuple[float, float]:
    """The most salient point of ``canvas`` as fractions of its width and height."""
    raw, _ = saliency(canvas)
    sal = cv2.GaussianBlur(raw, (0, 0), max(1.0, min(raw.shape) / 8))
    row, col = np.unravel_index(int(np.argmax(sal)), raw.shape)
    return (int(col) + 0.5) / raw.shape[1], (int(row) + 0.5) / raw.shape[0]


def _framing(canvas_size: Size, zoom: float, target: tuple[float, float]) -> Rect:
    """The window at ``zoom`` (1 = the whole canvas) centred as near ``target`` as fits."""
    width, height = canvas_size[0] / zoom, canvas_size[1] / zoom
    x = min(max(0.0, target[0] * canvas_size[0] - width / 2), canvas_size[0] - width)
    y = min(max(0.0, target[1] * canvas_size[1] - height / 2), canvas_size[1] - height)
    return x, y, width, height


def _shot(picture: ByteArray, size: Size, rng: np.random.Generator) -> _Shot:
    canvas_size = (round(size[0] * _CANVAS), round(size[1] * _CANVAS))
    canvas = smart_crop(picture, canvas_size)
    near, far = float(rng.uniform(1.2, _CANVAS)), float(rng.uniform(1.0, 1.05))
    wide_target = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7)))
    close_target = _salient_point(canvas)
    wide = _framing(canvas_size, far, wide_target)
    close = _framing(canvas_size, max(near, far + _MIN_ZOOM_CHANGE), close_target)
    if rng.random() < 0.5:
        return _Shot(canvas, wide, close)  # zoom in on the subject
    return _Shot(canvas, close, wide)  # pull back from it


def _smoothstep(value: float) -> float:
    clipped = min(1.0, max(0.0, value))
    return clipped * clipped * (3.0 - 2.0 * clipped)


def _view(shot: _Shot, progress: float, size: Size) -> ByteArray:
    eased = _smoothstep(progress)
    x, y, width, _ = (a + (b - a) * eased for a, b in zip(shot.start, shot.end, strict=True))
    scale = size[0] / width
    matrix = np.array([[scale, 0.0, -x * scale], [0.0, scale, -y * scale]], dtype=np.float64)
    return u8(
        cv2.warpAffine(
            shot.canvas, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
    )


def _timeline(count: int, total: int) -> list[tuple[int, int]]:
    """``[start, end)`` frames of each shot; consecutive shots overlap by the fade."""
    fade = 0 if count == 1 else min(round(_FADE_SECONDS * FPS), total // (3 * count))
    length = (total + (count - 1) * fade) / count
    spans = []
    for number in range(count):
        start = round(number * (length - fade))
        spans.append((start, total if number == count - 1 else round(start + length)))
    return spans


def _ken_burns(shots: Sequence[_Shot], total: int, size: Size) -> Iterator[ByteArray]:
    spans = _timeline(len(shots), total)
    for number in range(total):
        layers = []
        for shot, (start, end) in zip(shots, spans, strict=True):
            if start <= number < end:
                progress = (number - start) / max(1, end - start - 1)
                layers.append((_view(shot, progress, size), start, end))
        yield _cross_fade(layers, number)


def _cross_fade(layers: list[tuple[ByteArray, int, int]], number: int) -> ByteArray:
    """The later layer fades in over the earlier one during their overlap."""
    if len(layers) == 1:
        return layers[0][0]
    (earlier, _, end), (later, start, _) = layers[0], layers[1]
    weight = (number - start + 1) / (end - start + 1)
    return u8(cv2.addWeighted(later, weight, earlier, 1.0 - weight, 0.0))


def animate_images(
    prompt: str,
    images: Sequence[bytes],
    *,
    aspect: tuple[int, int],
    seconds: float,
    index: int,
    long_side: int = 1280,
    audio: bytes | None = None,
) -> Artifact:
    """A Ken Burns MP4 (24 fps, ``round(seconds * 24)`` frames) over the reference images."""
    _check_seconds(seconds)
    if not images:
        raise ValueError("no reference image was given; send at least one")
    size = fit_size(*aspect, long_side)
    total = max(1, round(seconds * FPS))
    count = min(len(images), MAX_ANIMATED, max(1, math.floor(seconds)))
    rng = rng_for(prompt, index)
    canvas_side = math.ceil(max(size) * _CANVAS)
    pictures = [decode_rgb(data, max_side=canvas_side) for data in images[:count]]
    shots = [_shot(picture, size, rng) for picture in pictures]
    data = write_mp4(_ken_burns(shots, total, size), FPS, size, audio=audio)
    plural = "s" if count > 1 else ""
    fades = " with cross-fades" if count > 1 else ""
    what = (
        f"Ken Burns pan and zoom over {count} reference image{plural}{fades}, "
        f"{total / FPS:g} s at {FPS} fps, {_ratio(aspect)} ({size[0]}x{size[1]}), "
        f"by OpenCV and x264"
    )
    return Artifact(data, "mp4", size[0], size[1], total / FPS, describe(_with_sound(what, audio)))


# --------------------------------------------------------------------------- restyle


def _output_size(aspect: tuple[int, int], long_side: int, clip: Clip) -> Size:
    """The asked aspect at most ``long_side`` long and no larger than the biggest window of
    that aspect inside the source (re-framing crops, it never upscales)."""
    ratio_w, ratio_h = fit_size(*aspect, 4096)
    inside = min(clip.width / ratio_w, clip.height / ratio_h) * max(ratio_w, ratio_h)
    return fit_size(*aspect, min(long_side, max(2, math.floor(inside))))


def _cover_size(clip: Clip, size: Size) -> Size:
    """The decode size that covers ``size`` with the source's aspect ratio."""
    scale = max(size[0] / clip.width, size[1] / clip.height)
    return max(size[0], even(clip.width * scale)), max(size[1], even(clip.height * scale))


def _reframed(clip: Clip, size: Size) -> Iterator[ByteArray]:
    """The frames cropped to ``size`` at one place: the salient window of the first frame."""
    frames = clip.frames(_cover_size(clip, size))
    first = next(frames, None)
    if first is None:
        return
    x, y = salient_window(first, *size)
    for frame in itertools.chain([first], frames):
        yield np.ascontiguousarray(frame[y : y + size[1], x : x + size[0]])


def transform_video(
    prompt: str,
    video: bytes,
    *,
    aspect: tuple[int, int],
    index: int,
    long_side: int = 1280,
    max_seconds: float = MAX_SECONDS,
    audio: bytes | None = None,
) -> Artifact:
    """``video`` re-framed to ``aspect`` and restyled per frame; its sound is kept unless
    ``audio`` replaces it. ValueError for bytes that are not a video, or one too long or
    larger than 3840x2160."""
    clip = read_video(video, max_seconds=max_seconds, max_pixels=MAX_INPUT_PIXELS)
    size = _output_size(aspect, long_side, clip)
    style = make_style(prompt, index)
    stylize = Stylizer(style, size, video=True)
    counted = _Counter(stylize(frame) for frame in _reframed(clip, size))
    sound = audio if audio is not None else clip.audio
    data = write_mp4(counted, clip.fps, size, audio=sound)
    seconds = float(counted.count / clip.fps)
    what = (
        f"The video re-framed to {_ratio(aspect)} ({size[0]}x{size[1]}) and styled frame by "
        f"frame with {style.summary} by OpenCV and x264, seeded by the prompt and variation "
        f"{index + 1}"
    )
    kept = clip.audio is not None
    return Artifact(
        data, "mp4", size[0], size[1], seconds, describe(_with_sound(what, audio, kept))
    )


class _Counter:
    """Counts the frames an iterator yields."""

    def __init__(self, frames: Iterator[ByteArray]) -> None:
        self._frames = frames
        self.count = 0

    def __iter__(self) -> Iterator[ByteArray]:
        for frame in self._frames:
            self.count += 1
            yield frame


# ------------------------------------------------------------------------ procedural


def render_clip(
    prompt: str,
    *,
    aspect: tuple[int, int],
    seconds: float,
    index: int,
    long_side: int = 1280,
    audio: bytes | None = None,
) -> Artifact:
    """The procedural renderer's MP4 for a prompt-only request (whole seconds, at least 1).

    The renderer seeds its scene from the prompt alone, so ``index`` does not change it.
    """
    _check_seconds(seconds)
    width, height = fit_size(*aspect, long_side)
    duration = max(1, round(seconds))
    data = render_mp4(prompt, duration, width, height, fps=FPS)
    if audio is not None:
        data = mux_audio(data, audio)
    what = (
        f"Procedural animated gradient art seeded by the prompt, with the prompt printed on it, "
        f"{duration} s at {FPS} fps, {_ratio(aspect)} ({width}x{height}), drawn by Hatchery's "
        f"renderer"
    )
    return Artifact(data, "mp4", width, height, float(duration), describe(_with_sound(what, audio)))
