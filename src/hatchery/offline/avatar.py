"""Built-in avatar presenters and talking-head videos, drawn and animated offline.

This is not an AI model. Each presenter is a stylised 2-D character drawn with Pillow from a
few parameters (skin, hair style and colour, clothes, face shape, glasses, beard), and a
talking video animates it from the audio alone with plain signal processing:

* the audio (any file FFmpeg reads) is cut into 1/25 s frames; the RMS loudness of each frame,
  relative to the loud frames of the clip, opens the mouth (a noise gate keeps it shut in
  silence; a fast-attack / slower-release filter smooths it), and the spectral centroid of
  the frame ("brightness": "ee" and "s" are bright, "oo" is dark) widens or rounds it;
* the eyes blink at seeded, natural intervals (every 2.5-5.5 s) and the head sways slowly,
  nodding slightly with the loudness.

Rendering is cheap: the backdrop and body, and the head without its eyes and mouth, are drawn
once per video (2x supersampled); the eyes and the mouth are small patches drawn for a few
quantised openings and pasted per frame. Frames are converted to BT.709 yuv420p and encoded
with libx264; the audio is re-encoded to AAC, muxed in, and the MP4 is remuxed "faststart"
(``moov`` before ``mdat``).

Stills: :func:`image_png` (720x720) and :func:`thumbnail_png` (256x256); :func:`preview_mp4`
is a 360x360 clip of the presenter saying hello with an eSpeak NG voice of its gender.

Limits: audio up to :data:`MAX_AUDIO_SECONDS` seconds; sides of 64 to 1920 pixels (even for a
video); :data:`FPS` frames per second; video ``crf`` 23 (veryfast), AAC mono 96 kbps.
Presenter ids are ``vg_pres_`` and 11 base-36 characters of sha256("presenter:<name>").
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cache, lru_cache

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import Colorspace
from PIL import Image, ImageDraw, ImageFilter

from hatchery.offline import speech
from hatchery.offline.audio import FloatSamples, decode_audio
from hatchery.providers.base import Artifact
from hatchery.providers.render import faststart

__all__ = [
    "FPS",
    "MAX_AUDIO_SECONDS",
    "Presenter",
    "image_png",
    "portrait",
    "presenter",
    "presenters",
    "preview_mp4",
    "talking_video",
    "thumbnail_png",
]

FPS = 25
MAX_AUDIO_SECONDS = 300.0
MIN_SIDE, MAX_SIDE = 64, 1920
_PORTRAIT_SIZE = (720, 720)
_THUMBNAIL_SIZE = (256, 256)
_PREVIEW_SIZE = (360, 360)
_SUPERSAMPLE = 2
_ZOOM = 1.15  # how much of the picture the presenter fills
_MOUTH_LEVELS = 16  # mouth openings drawn per video (0 = shut)
_WIDTH_LEVELS = (0.9, 1.0, 1.12)  # mouth widths: rounded, neutral, spread
_BLINK_LEVELS = 6
_HEAD_TRAVEL = 0.03  # a head offset of 1 moves the head by this fraction of the picture
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
_VIDEO_CRF = 23
_AUDIO_BIT_RATE = 96_000

RGB = tuple[int, int, int]
Point = tuple[float, float]
ByteArray = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Presenter:
    """A built-in presenter and how to draw it."""

    presenter_id: str
    name: str
    gender: str  # "MALE" or "FEMALE"
    skin: RGB
    hair: RGB
    hair_style: str  # "long", "bob", "curly", "bun", "short", "quiff", "buzz"
    eyes: RGB
    lips: RGB
    clothing: RGB
    clothing_accent: RGB
    backdrop: RGB
    face_width: float = 1.0  # multipliers of the default face proportions
    face_length: float = 1.0
    jaw: float = 1.0
    glasses: bool = False
    beard: bool = False


def _presenter_id(name: str) -> str:
    number = int.from_bytes(hashlib.sha256(f"presenter:{name}".encode()).digest(), "big")
    digits = []
    for _ in range(11):
        number, digit = divmod(number, 36)
        digits.append("0123456789abcdefghijklmnopqrstuvwxyz"[digit])
    return "vg_pres_" + "".join(digits)


_DRAWN = (
    Presenter(
        "",
        "Amara",
        "FEMALE",
        skin=(141, 85, 54),
        hair=(28, 22, 20),
        hair_style="curly",
        eyes=(66, 40, 22),
        lips=(120, 58, 52),
        clothing=(22, 122, 128),
        clothing_accent=(240, 200, 90),
        backdrop=(232, 222, 208),
        face_width=1.02,
    ),
    Presenter(
        "",
        "Sofia",
        "FEMALE",
        skin=(236, 196, 170),
        hair=(101, 60, 34),
        hair_style="long",
        eyes=(74, 110, 66),
        lips=(190, 92, 96),
        clothing=(128, 34, 52),
        clothing_accent=(236, 226, 214),
        backdrop=(206, 220, 232),
        face_length=1.04,
        glasses=True,
    ),
    Presenter(
        "",
        "Mei",
        "FEMALE",
        skin=(232, 200, 168),
        hair=(22, 20, 24),
        hair_style="bob",
        eyes=(52, 34, 24),
        lips=(196, 100, 104),
        clothing=(34, 52, 98),
        clothing_accent=(220, 222, 230),
        backdrop=(238, 214, 204),
        face_width=0.97,
        jaw=0.94,
    ),
    Presenter(
        "",
        "James",
        "MALE",
        skin=(240, 200, 178),
        hair=(196, 150, 84),
        hair_style="quiff",
        eyes=(70, 106, 150),
        lips=(176, 110, 100),
        clothing=(38, 50, 72),
        clothing_accent=(232, 236, 240),
        backdrop=(214, 226, 218),
        jaw=1.08,
    ),
    Presenter(
        "",
        "Ravi",
        "MALE",
        skin=(176, 120, 84),
        hair=(30, 24, 22),
        hair_style="short",
        eyes=(56, 36, 24),
        lips=(140, 84, 74),
        clothing=(92, 96, 104),
        clothing_accent=(214, 222, 236),
        backdrop=(232, 226, 212),
        face_length=1.03,
        beard=True,
    ),
    Presenter(
        "",
        "Kofi",
        "MALE",
        skin=(104, 66, 46),
        hair=(22, 18, 16),
        hair_style="buzz",
        eyes=(48, 30, 20),
        lips=(98, 56, 48),
        clothing=(186, 132, 40),
        clothing_accent=(40, 40, 44),
        backdrop=(210, 216, 232),
        face_width=1.04,
        jaw=1.06,
        glasses=True,
    ),
)
_PRESENTERS = tuple(replace(p, presenter_id=_presenter_id(p.name)) for p in _DRAWN)


def presenters() -> tuple[Presenter, ...]:
    """The built-in presenters (three female, three male), in a stable order."""
    return _PRESENTERS


def presenter(presenter_id: str) -> Presenter | None:
    """The presenter with this id, or None."""
    return next((p for p in _PRESENTERS if p.presenter_id == presenter_id), None)


# ---------------------------------------------------------------------------- drawing


def _mix(a: RGB, b: RGB, amount: float) -> RGB:
    """``a`` moved ``amount`` of the way to ``b``."""
    return (
        round(a[0] + (b[0] - a[0]) * amount),
        round(a[1] + (b[1] - a[1]) * amount),
        round(a[2] + (b[2] - a[2]) * amount),
    )


def _shade(color: RGB, amount: float) -> RGB:
    return _mix(color, (0, 0, 0), amount)


@dataclass(frozen=True)
class _Pen:
    """Draws in "units": the presenter lives in a unit square, (0, 0) top left."""

    draw: ImageDraw.ImageDraw
    scale: float  # pixels per unit
    x0: float  # pixel position of the unit origin
    y0: float

    def xy(self, x: float, y: float) -> Point:
        return (self.x0 + x * self.scale, self.y0 + y * self.scale)

    def box(self, cx: float, cy: float, rx: float, ry: float) -> list[Point]:
        return [self.xy(cx - rx, cy - ry), self.xy(cx + rx, cy + ry)]

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: RGB | int) -> None:
        self.draw.ellipse(self.box(cx, cy, rx, ry), fill=fill)

    def chord(self, center: Point, radii: Point, angles: Point, fill: RGB) -> None:
        box = self.box(center[0], center[1], radii[0], radii[1])
        self.draw.chord(box, angles[0], angles[1], fill=fill)

    def polygon(self, points: Sequence[Point], fill: RGB | int) -> None:
        self.draw.polygon([self.xy(x, y) for x, y in points], fill=fill)

    def line(self, points: Sequence[Point], fill: RGB, width: float) -> None:
        pixels = max(round(width * self.scale), 1)
        self.draw.line([self.xy(x, y) for x, y in points], fill=fill, width=pixels, joint="curve")

    def rounded(
        self,
        box: tuple[float, float, float, float],
        radius: float,
        fill: RGB | None = None,
        outline: RGB | None = None,
        width: float = 0.0,
    ) -> None:
        corners = [self.xy(box[0], box[1]), self.xy(box[2], box[3])]
        pixels = max(round(width * self.scale), 1) if outline else 0
        self.draw.rounded_rectangle(
            corners, radius=radius * self.scale, fill=fill, outline=outline, width=pixels
        )


@dataclass(frozen=True)
class _Face:
    """Where the parts of a presenter's face are, in units."""

    cx: float
    cy: float  # centre of the cranium
    rx: float
    ry: float
    eye_y: float
    eye_dx: float
    mouth_y: float

    @classmethod
    def of(cls, p: Presenter) -> _Face:
        return cls(0.5, 0.395, 0.148 * p.face_width, 0.175 * p.face_length, 0.405, 0.058, 0.512)


_EYE_RY = 0.016  # half the height of an eye, in units
_EYES_BOX = (0.385, 0.368, 0.615, 0.44)  # the eye patch, in units (left, top, right, bottom)
_MOUTH_BOX = (0.42, 0.466, 0.58, 0.56)


def _face_shape(pen: _Pen, f: _Face, jaw: float, grow: float, fill: RGB | int) -> None:
    pen.ellipse(f.cx, f.cy, f.rx + grow, f.ry + grow, fill)
    pen.ellipse(f.cx, f.cy + 0.055, f.rx * 0.85 * jaw + grow, f.ry * 0.8 + grow, fill)


def _hair_back(pen: _Pen, p: Presenter, f: _Face) -> None:
    style, hair = p.hair_style, p.hair
    if style == "long":  # behind the head and the neck, down to the shoulders
        pen.ellipse(f.cx, f.cy - 0.01, f.rx * 1.15, f.ry * 1.08, hair)
        pen.rounded((f.cx - f.rx * 1.2, f.cy, f.cx + f.rx * 1.2, 0.73), 0.06, fill=hair)
        pen.rounded((f.cx - 0.055, f.cy + 0.1, f.cx + 0.055, 0.76), 0.03, fill=_shade(p.skin, 0.14))
    elif style == "bob":
        pen.ellipse(f.cx, f.cy + 0.02, f.rx * 1.18, f.ry * 1.12, hair)
    elif style == "curly":
        pen.ellipse(f.cx, f.cy, f.rx * 1.42, f.ry * 1.2, hair)
        for k in range(18):
            angle = 2 * math.pi * k / 18
            x, y = f.cx + f.rx * 1.42 * math.cos(angle), f.cy + f.ry * 1.2 * math.sin(angle)
            pen.ellipse(x, y, 0.035, 0.035, hair)
    elif style == "bun":
        pen.ellipse(f.cx, f.cy - f.ry - 0.025, 0.055, 0.05, hair)


_HAIRLINE = {"long": 0.285, "bob": 0.335, "curly": 0.29, "bun": 0.28, "short": 0.29}


def _hair_front(head: Image.Image, pen: _Pen, p: Presenter, f: _Face) -> None:
    """The hair over the head: the grown head outline minus a window for the face."""
    mask = Image.new("L", head.size, 0)
    mpen = _Pen(ImageDraw.Draw(mask), pen.scale, pen.x0, pen.y0)
    grow = {"buzz": 0.005, "short": 0.018, "quiff": 0.018}.get(p.hair_style, 0.014)
    mpen.ellipse(f.cx, f.cy, f.rx + grow, f.ry + grow, 255)
    if p.hair_style == "quiff":
        mpen.ellipse(f.cx + 0.03, f.cy - f.ry + 0.012, f.rx * 0.7, 0.045, 255)
    if p.hair_style in ("long", "short"):  # a side-swept fringe
        mpen.ellipse(f.cx - 0.06, f.cy - f.ry + 0.07, 0.09, 0.045, 255)
    top = _HAIRLINE.get(p.hair_style, 0.3)
    window_ry = f.ry * 0.95
    mpen.ellipse(f.cx, top + window_ry, f.rx * 0.93, window_ry, 0)
    bottom = f.eye_y - 0.03 if p.hair_style in ("short", "quiff", "buzz") else 0.44
    mpen.polygon([(0, bottom), (1, bottom), (1, 1), (0, 1)], 0)
    color = _mix(p.hair, p.skin, 0.35) if p.hair_style == "buzz" else p.hair
    head.paste(color, (0, 0), mask)


def _beard(head: Image.Image, pen: _Pen, p: Presenter, f: _Face) -> None:
    mask = Image.new("L", head.size, 0)
    mpen = _Pen(ImageDraw.Draw(mask), pen.scale, pen.x0, pen.y0)
    _face_shape(mpen, f, p.jaw, 0.004, 255)
    mpen.polygon([(0, 0), (1, 0), (1, f.mouth_y - 0.035), (0, f.mouth_y - 0.035)], 0)
    mpen.ellipse(f.cx - f.rx * 0.95, f.mouth_y - 0.035, 0.05, 0.06, 0)
    mpen.ellipse(f.cx + f.rx * 0.95, f.mouth_y - 0.035, 0.05, 0.06, 0)
    head.paste(_mix(p.hair, p.skin, 0.15), (0, 0), mask)


def _features(pen: _Pen, p: Presenter, f: _Face) -> None:
    brow = _shade(p.hair, 0.1) if p.hair_style != "buzz" else _shade(p.hair, 0.0)
    for side in (-1, 1):
        x = f.cx + side * f.eye_dx
        points = [
            (x - side * 0.03, f.eye_y - 0.037),
            (x - side * 0.002, f.eye_y - 0.044),
            (x + side * 0.032, f.eye_y - 0.034),
        ]
        pen.line(points, brow, 0.009)
    nose = _shade(p.skin, 0.16)
    pen.line([(f.cx + 0.003, f.eye_y + 0.02), (f.cx + 0.008, f.eye_y + 0.055)], nose, 0.004)
    pen.line(
        [(f.cx - 0.014, f.eye_y + 0.06), (f.cx, f.eye_y + 0.065), (f.cx + 0.014, f.eye_y + 0.06)],
        nose,
        0.004,
    )


def _blush(size: tuple[int, int], pen: _Pen, p: Presenter, f: _Face) -> Image.Image:
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    bpen = _Pen(ImageDraw.Draw(layer), pen.scale, pen.x0, pen.y0)
    color = (*_mix(p.skin, (220, 70, 80), 0.5), 55)
    for side in (-1, 1):
        bpen.draw.ellipse(bpen.box(f.cx + side * 0.088, f.eye_y + 0.062, 0.03, 0.017), fill=color)
    return layer.filter(ImageFilter.GaussianBlur(0.012 * pen.scale))


def _draw_head(
    size: tuple[int, int], pen_at: Callable[[ImageDraw.ImageDraw], _Pen], p: Presenter
) -> Image.Image:
    head = Image.new("RGBA", size, (0, 0, 0, 0))
    pen = pen_at(ImageDraw.Draw(head))
    f = _Face.of(p)
    _hair_back(pen, p, f)
    ear = _shade(p.skin, 0.06)
    for side in (-1, 1):
        pen.ellipse(f.cx + side * f.rx * 0.97, f.eye_y + 0.01, 0.022, 0.036, ear)
    _face_shape(pen, f, p.jaw, 0.0, p.skin)
    if p.beard:
        _beard(head, pen, p, f)
    _hair_front(head, pen, p, f)
    _features(pen, p, f)
    return Image.alpha_composite(head, _blush(size, pen, p, f))


def _draw_body(
    size: tuple[int, int], pen_at: Callable[[ImageDraw.ImageDraw], _Pen], p: Presenter
) -> Image.Image:
    body = Image.new("RGBA", size, (0, 0, 0, 0))
    pen = pen_at(ImageDraw.Draw(body))
    f = _Face.of(p)
    pen.rounded((f.cx - 0.055, 0.5, f.cx + 0.055, 0.76), 0.03, fill=_shade(p.skin, 0.05))
    pen.ellipse(f.cx, 0.578, 0.055, 0.035, _shade(p.skin, 0.2))
    pen.ellipse(0.5, 1.04, 0.41, 0.34, p.clothing)
    pen.rounded((0.09, 0.8, 0.91, 1.2), 0.12, fill=p.clothing)
    collar = [(f.cx - 0.075, 0.69), (f.cx + 0.075, 0.69), (f.cx, 0.81)]
    pen.polygon(collar, _shade(p.skin, 0.05))
    pen.line([*collar, collar[0]][1:], p.clothing_accent, 0.012)
    pen.line([collar[0], collar[2]], p.clothing_accent, 0.012)
    return body


def _backdrop(size: tuple[int, int], p: Presenter) -> Image.Image:
    width, height = size
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    x = np.linspace(-1.0, 1.0, width)[None, :, None]
    base = np.asarray(p.backdrop, dtype=np.float64)[None, None, :]
    glow = np.exp(
        -((x * width / max(size)) ** 2 + ((y - 0.35) * height / max(size) * 2) ** 2) * 1.5
    )
    pixels = base * (0.82 + 0.1 * (1 - y)) + (255 - base) * 0.35 * glow
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


# ---------------------------------------------------------------------------- patches


def _lid(f: _Face, blink: float) -> float:
    """Where the upper eyelid's edge is: a little over the eye at rest, shut at 1."""
    rest = 0.08
    return f.eye_y - _EYE_RY + 2 * _EYE_RY * (rest + (1 - rest) * blink)


def _eye_pixels(pen: _Pen, p: Presenter, f: _Face, blink: float) -> None:
    ry = 0.016
    for side in (-1, 1):
        x = f.cx + side * f.eye_dx
        pen.ellipse(x, f.eye_y, 0.031, ry, (246, 244, 240))
        pen.ellipse(x, f.eye_y + 0.001, 0.0135, 0.0135, p.eyes)
        pen.ellipse(x, f.eye_y + 0.001, 0.0065, 0.0065, (16, 12, 12))
        pen.ellipse(x + 0.005, f.eye_y - 0.004, 0.003, 0.003, (255, 255, 255))
        lid = _lid(f, blink)
        pen.polygon(
            [(x - 0.04, 0.3), (x + 0.04, 0.3), (x + 0.04, lid), (x - 0.04, lid)],
            _shade(p.skin, 0.05),
        )


def _eye_lines(pen: _Pen, p: Presenter, f: _Face, blink: float) -> None:
    ry, lash = 0.016, _shade(p.hair, 0.3) if p.gender == "FEMALE" else _shade(p.skin, 0.55)
    for side in (-1, 1):
        x = f.cx + side * f.eye_dx
        lid = min(_lid(f, blink), f.eye_y + ry * 0.7)
        half = 0.031 * math.sqrt(max(1 - ((lid - f.eye_y) / ry) ** 2, 0.0))
        pen.line(
            [(x - half - 0.002, lid + 0.001), (x, lid - 0.001), (x + half + 0.002, lid + 0.001)],
            lash,
            0.0035,
        )
    if p.glasses:
        frame = (40, 36, 40)
        for side in (-1, 1):
            x = f.cx + side * f.eye_dx
            pen.rounded(
                (x - 0.046, f.eye_y - 0.03, x + 0.046, f.eye_y + 0.03),
                0.014,
                outline=frame,
                width=0.005,
            )
        pen.line(
            [
                (f.cx - 0.013, f.eye_y - 0.006),
                (f.cx, f.eye_y - 0.01),
                (f.cx + 0.013, f.eye_y - 0.006),
            ],
            frame,
            0.005,
        )


def _mouth_pixels(pen: _Pen, p: Presenter, f: _Face, opening: float, width: float) -> None:
    cx, cy = f.cx, f.mouth_y
    half = 0.038 * width * (1 - 0.12 * opening)
    gap = 0.028 * opening
    lips = _mix(p.skin, p.lips, 0.75)
    if gap < 0.002:
        pen.ellipse(cx, cy, half, 0.008, lips)
        smile = [(cx - half, cy - 0.002), (cx - half * 0.5, cy + 0.002), (cx, cy + 0.003),
                 (cx + half * 0.5, cy + 0.002), (cx + half, cy - 0.002)]  # fmt: skip
        pen.line(smile, _shade(p.lips, 0.45), 0.004)
        return
    pen.ellipse(cx, cy, half + 0.004, gap + 0.008, lips)
    pen.ellipse(cx, cy, half * 0.86, gap, (58, 20, 26))
    pen.chord((cx, cy), (half * 0.86, gap), (200, 340), (242, 238, 230))
    if gap > 0.012:
        pen.chord((cx, cy + gap * 0.15), (half * 0.6, gap * 0.8), (25, 155), (186, 84, 92))


@dataclass
class _Rig:
    """A presenter drawn once at one size; faces are composed from it frame by frame."""

    presenter: Presenter
    size: tuple[int, int]
    body: Image.Image  # RGB, the whole picture without the head
    head: Image.Image  # RGBA, cropped
    head_at: tuple[int, int]
    scale: float  # pixels per unit
    origin: Point  # pixel position of the unit origin
    _patches: dict[tuple[str, float, float], Image.Image] = field(default_factory=dict)

    def _box(self, box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        left, top = self.origin[0] + box[0] * self.scale, self.origin[1] + box[1] * self.scale
        right, bottom = self.origin[0] + box[2] * self.scale, self.origin[1] + box[3] * self.scale
        return math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom)

    def _patch(self, kind: str, a: float, b: float) -> tuple[Image.Image, tuple[int, int]]:
        left, top, right, bottom = self._box(_EYES_BOX if kind == "eyes" else _MOUTH_BOX)
        key = (kind, a, b)
        if key not in self._patches:
            self._patches[key] = self._draw_patch(kind, a, b, (left, top, right, bottom))
        return self._patches[key], (left, top)

    def _draw_patch(
        self, kind: str, a: float, b: float, box: tuple[int, int, int, int]
    ) -> Image.Image:
        big = ((box[2] - box[0]) * _SUPERSAMPLE, (box[3] - box[1]) * _SUPERSAMPLE)
        x0 = (self.origin[0] - box[0]) * _SUPERSAMPLE
        y0 = (self.origin[1] - box[1]) * _SUPERSAMPLE
        scale = self.scale * _SUPERSAMPLE
        f, p = _Face.of(self.presenter), self.presenter
        if kind == "mouth":
            layer = Image.new("RGBA", big, (0, 0, 0, 0))
            _mouth_pixels(_Pen(ImageDraw.Draw(layer), scale, x0, y0), p, f, a, b)
        else:
            layer = self._eyes_layer(big, (scale, x0, y0), a)
        return layer.resize((box[2] - box[0], box[3] - box[1]), Image.Resampling.LANCZOS)

    def _eyes_layer(
        self, big: tuple[int, int], at: tuple[float, float, float], blink: float
    ) -> Image.Image:
        f, p = _Face.of(self.presenter), self.presenter
        pixels = Image.new("RGB", big, p.skin)
        _eye_pixels(_Pen(ImageDraw.Draw(pixels), *at), p, f, blink)
        almond = Image.new("L", big, 0)
        mask_pen = _Pen(ImageDraw.Draw(almond), *at)
        for side in (-1, 1):
            mask_pen.ellipse(f.cx + side * f.eye_dx, f.eye_y, 0.031, 0.016, 255)
        layer = Image.new("RGBA", big, (0, 0, 0, 0))
        layer.paste(pixels, (0, 0), almond)
        _eye_lines(_Pen(ImageDraw.Draw(layer), *at), p, f, blink)
        return layer

    def frame(
        self, opening: float, width: float, blink: float, head: tuple[float, float]
    ) -> Image.Image:
        """The picture with the mouth ``opening`` (0-1) of ``width``, eyes ``blink`` (0-1)."""
        travel = _HEAD_TRAVEL * min(self.size)
        dx, dy = round(head[0] * travel), round(head[1] * travel)
        picture = self.body.copy()
        picture.paste(self.head, (self.head_at[0] + dx, self.head_at[1] + dy), self.head)
        for kind, a, b in (("eyes", blink, 0.0), ("mouth", opening, width)):
            patch, (x, y) = self._patch(kind, a, b)
            picture.paste(patch, (x + dx, y + dy), patch)
        return picture


def _make_rig(p: Presenter, size: tuple[int, int]) -> _Rig:
    width, height = size
    side = min(size)
    scale = side * _ZOOM  # the unit square, enlarged about its bottom centre
    origin = (width / 2 - scale / 2, float(height) - scale)
    big = (width * _SUPERSAMPLE, height * _SUPERSAMPLE)

    def pen_at(draw: ImageDraw.ImageDraw) -> _Pen:
        return _Pen(draw, scale * _SUPERSAMPLE, origin[0] * _SUPERSAMPLE, origin[1] * _SUPERSAMPLE)

    body = _draw_body(big, pen_at, p).resize(size, Image.Resampling.LANCZOS)
    picture = _backdrop(size, p)
    picture.paste(body, (0, 0), body)
    head = _draw_head(big, pen_at, p).resize(size, Image.Resampling.LANCZOS)
    bbox = head.getbbox() or (0, 0, width, height)
    return _Rig(p, size, picture, head.crop(bbox), (bbox[0], bbox[1]), scale, origin)


@lru_cache(maxsize=6)
def _rig(p: Presenter, size: tuple[int, int]) -> _Rig:
    return _make_rig(p, size)


def _check_size(size: tuple[int, int], *, even: bool) -> tuple[int, int]:
    width, height = int(size[0]), int(size[1])
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise ValueError(
            f"the size must be {MIN_SIDE} to {MAX_SIDE} pixels a side, got {width}x{height}"
        )
    if even and (width % 2 or height % 2):
        raise ValueError(f"video sides must be even, got {width}x{height}")
    return width, height


def _level(value: float, levels: int) -> float:
    return round(min(max(value, 0.0), 1.0) * (levels - 1)) / (levels - 1)


def _nearest_width(value: float) -> float:
    return min(_WIDTH_LEVELS, key=lambda level: abs(level - value))


def portrait(
    p: Presenter,
    *,
    mouth_open: float = 0.0,
    blink: float = 0.0,
    head: tuple[float, float] = (0.0, 0.0),
    size: tuple[int, int] = _PORTRAIT_SIZE,
) -> Image.Image:
    """``p`` drawn at ``size`` (RGB): ``mouth_open`` and ``blink`` in 0-1 (quantised to the
    levels a video uses), ``head`` an (x, y) offset in -1..1 (1 = 3 % of the picture)."""
    rig = _rig(p, _check_size(size, even=False))
    return rig.frame(_level(mouth_open, _MOUTH_LEVELS), 1.0, _level(blink, _BLINK_LEVELS), head)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


@cache
def image_png(p: Presenter) -> bytes:
    """A 720x720 PNG portrait of ``p``."""
    return _png(portrait(p))


@cache
def thumbnail_png(p: Presenter) -> bytes:
    """A 256x256 PNG portrait of ``p``."""
    return _png(portrait(p).resize(_THUMBNAIL_SIZE, Image.Resampling.LANCZOS))


# ---------------------------------------------------------------------------- animation


@dataclass(frozen=True)
class _Motion:
    """Per video frame: mouth opening and width, blink, head offset."""

    opening: FloatArray
    width: FloatArray
    blink: FloatArray
    head_x: FloatArray
    head_y: FloatArray


def _frame_slices(count: int, rate: int) -> Iterator[tuple[int, int]]:
    for index in range(count):
        yield round(index * rate / FPS), round((index + 1) * rate / FPS)


def _loudness(samples: FloatSamples, rate: int, count: int) -> tuple[FloatArray, FloatArray]:
    """Per frame: RMS level (dBFS) and spectral centroid (Hz, 0 when silent)."""
    levels, centroids = np.full(count, -120.0), np.zeros(count)
    for index, (start, end) in enumerate(_frame_slices(count, rate)):
        chunk = samples[start:end].astype(np.float64)
        if chunk.size < 16:
            continue
        levels[index] = 10 * math.log10(float(np.mean(chunk**2)) + 1e-12)
        power = np.abs(np.fft.rfft(chunk * np.hanning(chunk.size))) ** 2
        freqs = np.fft.rfftfreq(chunk.size, 1 / rate)
        centroids[index] = float(np.sum(freqs * power) / (np.sum(power) + 1e-12))
    return levels, centroids


def _smooth(values: FloatArray, attack: float, release: float) -> FloatArray:
    out, state = np.empty_like(values), 0.0
    for index, value in enumerate(values):
        state += (attack if value > state else release) * (value - state)
        out[index] = state
    return out


def _mouth_track(levels: FloatArray, centroids: FloatArray) -> tuple[FloatArray, FloatArray]:
    reference = float(np.percentile(levels, 95)) if levels.size else -120.0
    floor = max(reference - 30.0, -55.0)  # the gate: quieter than this is silence
    opening = np.clip((levels - floor) / max(reference - floor - 3.0, 1e-6), 0.0, 1.0)
    opening = _smooth(opening**0.8, 0.7, 0.45)
    brightness = np.clip((centroids - 900.0) / 2200.0, 0.0, 1.0)
    width = np.where(opening > 0.05, 0.9 + 0.22 * brightness, 1.0)
    return opening, width


def _blinks(rng: np.random.Generator, count: int) -> FloatArray:
    shape = (0.5, 1.0, 1.0, 0.6, 0.25)
    blink = np.zeros(count)
    at = int(rng.uniform(0.6, 2.0) * FPS)
    while at < count:
        end = min(at + len(shape), count)
        blink[at:end] = shape[: end - at]
        at += int(rng.uniform(2.5, 5.5) * FPS)
    return blink


def _motion(samples: FloatSamples, rate: int, count: int, seed: bytes) -> _Motion:
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed).digest()[:16], "big"))
    levels, centroids = _loudness(samples, rate, count)
    opening, width = _mouth_track(levels, centroids)
    t = np.arange(count) / FPS
    phases = rng.uniform(0, 2 * math.pi, 4)
    sway = 0.22 * np.sin(2 * math.pi * t / 4.3 + phases[0]) + 0.1 * np.sin(
        2 * math.pi * t / 1.9 + phases[1]
    )
    nod = 0.12 * np.sin(2 * math.pi * t / 3.1 + phases[2]) + 0.18 * _smooth(opening, 0.2, 0.1)
    return _Motion(opening, width, _blinks(rng, count), sway, nod)


def _frames(rig: _Rig, motion: _Motion) -> Iterator[Image.Image]:
    for index in range(motion.opening.size):
        yield rig.frame(
            _level(float(motion.opening[index]), _MOUTH_LEVELS),
            _nearest_width(float(motion.width[index])),
            _level(float(motion.blink[index]), _BLINK_LEVELS),
            (float(motion.head_x[index]), float(motion.head_y[index])),
        )


# ---------------------------------------------------------------------------- MP4


def _resampled(samples: FloatSamples, rate: int) -> tuple[FloatSamples, int]:
    """The audio at a rate AAC supports (linear interpolation to 48 kHz when it is not)."""
    if rate in _AAC_RATES:
        return samples, rate
    target = 48000
    positions = np.arange(round(samples.size * target / rate)) * rate / target
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32), target


def _video_stream(container: av.container.OutputContainer, size: tuple[int, int]) -> av.VideoStream:
    stream = container.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.options = {"preset": "veryfast", "crf": str(_VIDEO_CRF)}
    context = stream.codec_context
    context.gop_size = 2 * FPS
    context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
    context.color_range = 1  # limited range
    return stream


def _audio_frame(samples: FloatSamples, rate: int, start: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="fltp", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
    return frame


def _encode(
    frames: Iterator[Image.Image], samples: FloatSamples, rate: int, size: tuple[int, int]
) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        video = _video_stream(container, size)
        audio = container.add_stream("aac", rate=rate, layout="mono")
        audio.bit_rate = _AUDIO_BIT_RATE
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24").reformat(
                format="yuv420p", dst_colorspace=Colorspace.ITU709
            )
            frame.pts = index
            container.mux(video.encode(frame))
            start, end = round(index * rate / FPS), round((index + 1) * rate / FPS)
            if start < samples.size:
                container.mux(audio.encode(_audio_frame(samples[start:end], rate, start)))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return faststart(out.getvalue())


def talking_video(
    p: Presenter,
    audio: bytes,
    *,
    index: int = 0,
    size: tuple[int, int] = _PORTRAIT_SIZE,
    max_seconds: float = MAX_AUDIO_SECONDS,
) -> Artifact:
    """An H.264 MP4 of ``p`` speaking ``audio`` (any format FFmpeg reads), audio muxed in.

    ``seconds`` is the audio's duration and the video has ``ceil(seconds * 25)`` frames.
    ``index`` (the result's number) reseeds the blinks and head motion. ``ValueError`` for audio
    that cannot be decoded, has no audio stream, or is longer than ``max_seconds`` (at most
    300 s), and for a size that is not even or outside 64-1920 pixels a side.
    """
    width, height = _check_size(size, even=True)
    longest = min(max_seconds, MAX_AUDIO_SECONDS)
    samples, rate = decode_audio(audio, max_seconds=longest)
    seconds = samples.size / rate
    if seconds > longest:
        raise ValueError(f"the audio is longer than {longest:g} s")
    count = max(math.ceil(seconds * FPS - 1e-9), 1)
    motion = _motion(samples, rate, count, f"{p.presenter_id}\0{index}\0{samples.size}".encode())
    samples, rate = _resampled(samples, rate)
    data = _encode(_frames(_rig(p, (width, height)), motion), samples, rate, (width, height))
    return Artifact(
        data=data,
        extension="mp4",
        width=width,
        height=height,
        seconds=seconds,
        description=(
            f"Stylised presenter {p.name} animated from the audio's loudness (mouth), with "
            "seeded blinks and head motion; made by Hatchery's local provider, not an AI model."
        ),
    )


@cache
def preview_mp4(p: Presenter) -> bytes:
    """A short (about 3 s) 360x360 MP4 of ``p`` saying hello with an eSpeak NG voice."""
    voice = next(v for v in speech.voices() if v.gender == p.gender and v.language_code == "en-US")
    line = f"Hi, I'm {p.name}. I present your videos."
    audio = speech.speak(line, voice=voice)
    return talking_video(p, audio.data, size=_PREVIEW_SIZE).data
