"""Background removal by GrabCut segmentation (OpenCV; a classical algorithm, not an AI model).

GrabCut (Rother, Kolmogorov and Blake, 2004) models the foreground and the background colours
as Gaussian mixtures and finds the labelling that best fits them with a smooth boundary, by a
graph cut. Here it runs on a copy at most :data:`WORK_SIDE` pixels long, initialised with a mask
instead of a rectangle:

* **border is background** - a pixel is likely background when it can reach the frame's
  border through the picture without crossing a colour edge. This is a geodesic "boundary
  connectivity" saliency (after Wei et al., 2012 and Zhu et al., 2014): the least sum of Lab
  colour steps along any path to a side of the frame, with steps under a noise threshold free
  (so gradients and grain cost nothing), computed by vectorised raster scans. It is measured
  from each side separately and the nearest side left out, so a subject cut by one edge of
  the frame (a bust, a product on a table) still stands out.
* **seeds** - with a mild centre bias, thresholded by Otsu's method, that map marks the
  probable foreground; the core of its largest region is certain foreground, and border
  pixels with a near-zero distance are certain background.

The result is cleaned with morphological opening and closing, small specks are dropped and
small holes filled, then brought back to full resolution with a **guided filter** (He, Sun and
Tang, 2010) steered by the image, which snaps the soft edge to the picture's own edges; a final
contrast ramp makes the inside exactly opaque and the background exactly transparent.

Videos: GrabCut runs in full on *keyframes* (every :data:`KEYFRAME_INTERVAL` frames, and on
cuts), at most :data:`VIDEO_WORK_SIDE` pixels long; between them the previous frame's mask is
propagated: each pixel is classified by Bayes' rule with the keyframe's two colour models
(GrabCut's Gaussian mixtures, evaluated with numpy) as the likelihoods and the previous
mask, blurred by the distance a subject may move in a frame, as the prior - a few
milliseconds a frame. The result is WebM VP9 with
an alpha channel (``yuva420p``), same frame count, rate and sound (Opus), at most
:data:`MAX_VIDEO_SIDE` pixels long.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from hatchery.offline.frames import (
    ByteArray,
    FloatArray,
    Size,
    decode_rgb,
    describe,
    encode_png,
    even,
    f32,
    read_video,
    u8,
    write_webm_alpha,
)
from hatchery.providers.base import Artifact

__all__ = [
    "KEYFRAME_INTERVAL",
    "MAX_VIDEO_SIDE",
    "VIDEO_WORK_SIDE",
    "WORK_SIDE",
    "remove_image_background",
    "remove_video_background",
]

Float32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

WORK_SIDE = 224
"""GrabCut runs on a copy of an image at most this long (0.1 to 1 s, depending on texture)."""
VIDEO_WORK_SIDE = 192
KEYFRAME_INTERVAL = 12
MAX_VIDEO_SIDE = 1280
"""Video cut-outs are at most this long (larger sources are scaled down)."""
MAX_VIDEO_PIXELS = 3840 * 2160

_ITERATIONS = 4
_SETTLED = 0.002  # GrabCut stops iterating once fewer pixels than this share change
_KEY_ITERATIONS = 3
_BORDER = 0.04  # of the short side
_STEP = 4.0  # Lab steps up to this size (noise, gradients) cost nothing in the geodesic
_SCAN_PASSES = 2
_MIN_SCALE = 20.0  # a flat picture has no salient part
_SIDES = (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1])  # top, bottom, left, right
_SEED = 20040801
_SURE_BACKGROUND = 0.08  # border pixels with a prior below this are certain background
_GUIDE_SIDE = 512
_TEMPORAL_SIGMA = 0.03  # of the work copy's long side: how far the subject may move a frame
_NO_RECT = (0, 0, 0, 0)  # GrabCut starts from the mask
_SIGNATURE = (32, 18)  # a cut is detected on a thumbnail this small (panning barely shows)
_CUT_DIFFERENCE = 25.0  # mean grey difference from the keyframe's that counts as a cut
_DESCRIPTION = (
    "Background removed with OpenCV GrabCut (seeded by a geodesic border-is-background saliency "
    "prior), morphological clean-up and a guided-filter soft edge"
)


# ------------------------------------------------------------------------------ prior


def _work_copy(rgb: ByteArray, side: int) -> ByteArray:
    """A copy at most ``side`` long, smoothed by a small bilateral filter: texture inside the
    subject or the background then weighs less than the edges between them (and the graph
    cut, whose time grows with the number of strong edges, runs faster)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    small = rgb
    if scale < 1.0:
        size = (max(8, round(width * scale)), max(8, round(height * scale)))
        small = u8(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
    return u8(cv2.bilateralFilter(small, 5, 30, 5))


def _border(shape: tuple[int, ...]) -> BoolArray:
    height, width = shape[:2]
    strip = max(2, round(min(height, width) * _BORDER))
    inside = np.zeros((height, width), np.bool_)
    inside[strip:-strip, strip:-strip] = True
    return ~inside


def _centre_bias(shape: tuple[int, ...]) -> Float32Array:
    ys = np.linspace(-1.0, 1.0, shape[0], dtype=np.float32)[:, None]
    xs = np.linspace(-1.0, 1.0, shape[1], dtype=np.float32)[None, :]
    return f32(0.75 + 0.25 * np.exp(-(xs * xs + ys * ys)))


def _core(candidate: BoolArray) -> BoolArray:
    """The inner part of the largest candidate region: its certain foreground."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        candidate.astype(np.uint8), connectivity=8
    )
    if count < 2:
        return np.zeros_like(candidate)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = (labels == largest).astype(np.uint8)
    distance = cv2.distanceTransform(region, cv2.DIST_L2, 3)
    core: BoolArray = distance > 0.5 * float(distance.max())
    return core


def _geodesic(lab: Float32Array, seeds: BoolArray) -> Float32Array:
    """Geodesic distance from ``seeds``: the least sum of colour steps over ``_STEP`` along
    any path, approximated by alternating vectorised raster scans (down, up, right, left)."""
    down = np.maximum(0.0, np.linalg.norm(lab[1:] - lab[:-1], axis=2) - _STEP)
    across = np.ascontiguousarray(
        np.maximum(0.0, np.linalg.norm(lab[:, 1:] - lab[:, :-1], axis=2) - _STEP).T
    )
    rows = np.where(seeds, 0.0, np.inf).astype(np.float32)
    for _ in range(_SCAN_PASSES):
        for y in range(1, rows.shape[0]):
            np.minimum(rows[y], rows[y - 1] + down[y - 1], out=rows[y])
        for y in range(rows.shape[0] - 2, -1, -1):
            np.minimum(rows[y], rows[y + 1] + down[y], out=rows[y])
        cols = np.ascontiguousarray(rows.T)
        for x in range(1, cols.shape[0]):
            np.minimum(cols[x], cols[x - 1] + across[x - 1], out=cols[x])
        for x in range(cols.shape[0] - 2, -1, -1):
            np.minimum(cols[x], cols[x + 1] + across[x], out=cols[x])
        rows = np.ascontiguousarray(cols.T)
    return rows


def _boundary_distance(lab: Float32Array) -> Float32Array:
    """How far (geodesically) each pixel is from the frame's sides, scaled to [0, 1].

    Measured from each side separately and averaged without the nearest side, so that a
    subject cut by one edge of the frame (a bust, a table top) still stands out.
    """
    maps = []
    for side in _SIDES:
        seeds = np.zeros(lab.shape[:2], np.bool_)
        seeds[side] = True
        maps.append(_geodesic(lab, seeds))
    ordered = np.sort(np.stack(maps), axis=0)
    combined = ordered[1:].mean(axis=0)
    scale = max(float(np.percentile(combined, 99)), _MIN_SCALE)
    return f32(np.clip(combined / scale, 0.0, 1.0))


def _prior(rgb: ByteArray) -> Float32Array:
    """Foreground likelihood in [0, 1]: boundary distance with a mild centre bias."""
    lab = f32(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB))
    distance = _boundary_distance(f32(cv2.GaussianBlur(lab, (0, 0), 1.0)))
    return f32(distance * _centre_bias(rgb.shape))


def _labels(rgb: ByteArray) -> ByteArray:
    """GrabCut's initial mask: certain/probable background and foreground from the priors."""
    prior, border = _prior(rgb), _border(rgb.shape)
    scaled = u8(np.rint(prior * 255.0))
    level, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    candidate = (scaled > max(level, 40)) & ~border
    labels = np.full(rgb.shape[:2], cv2.GC_PR_BGD, np.uint8)
    if not candidate.any():  # nothing stands out: GrabCut's usual central rectangle
        candidate = _central(rgb.shape)
    labels[candidate] = cv2.GC_PR_FGD
    labels[_core(candidate)] = cv2.GC_FGD
    labels[border & (prior < _SURE_BACKGROUND)] = cv2.GC_BGD
    return labels


def _central(shape: tuple[int, ...]) -> BoolArray:
    height, width = shape[:2]
    central = np.zeros((height, width), np.bool_)
    central[height // 10 : height - height // 10, width // 10 : width - width // 10] = True
    return central


# ---------------------------------------------------------------------------- GrabCut


@dataclass
class _Models:
    background: npt.NDArray[np.float64]  # GrabCut's 5-component GMMs, 65 numbers each
    foreground: npt.NDArray[np.float64]


def _grabcut(rgb: ByteArray, labels: ByteArray, iterations: int) -> tuple[BoolArray, _Models]:
    models = _Models(np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64))
    if _foreground(labels).all() or not _foreground(labels).any():  # GrabCut needs both
        return _foreground(labels), models
    mask = labels.copy()
    cv2.setRNGSeed(_SEED)  # GrabCut seeds its k-means from OpenCV's (per-thread) generator
    background, foreground = models.background, models.foreground
    cv2.grabCut(rgb, mask, _NO_RECT, background, foreground, 1, cv2.GC_INIT_WITH_MASK)
    for _ in range(iterations - 1):  # one more pass at a time, until the mask settles
        before = _foreground(mask)
        cv2.grabCut(rgb, mask, _NO_RECT, background, foreground, 1, cv2.GC_EVAL)
        if np.count_nonzero(before != _foreground(mask)) < _SETTLED * mask.size:
            break
    return _foreground(mask), models


def _log_likelihood(pixels: npt.NDArray[np.float64], model: npt.NDArray[np.float64]) -> FloatArray:
    """Log-density (up to a constant) of each RGB row of ``pixels`` under a GrabCut GMM.

    OpenCV stores a model as 5 weights, 5 means (3 each) and 5 covariances (3x3 each).
    """
    params = model.ravel()
    weights, means, covariances = (
        params[:5],
        params[5:20].reshape(5, 3),
        params[20:].reshape(5, 3, 3),
    )
    terms = []
    for weight, mean, covariance in zip(weights, means, covariances, strict=True):
        if weight <= 0:
            continue
        regular = covariance + np.eye(3) * 1e-2
        diff = pixels - mean
        distance = ((diff @ np.linalg.inv(regular)) * diff).sum(axis=1)
        log_det = float(np.linalg.slogdet(regular)[1])
        terms.append(np.log(weight) - 0.5 * log_det - 0.5 * distance)
    if not terms:
        return np.full(len(pixels), -1e9)
    result: FloatArray = np.logaddexp.reduce(np.stack(terms), axis=0)
    return result


def _foreground(mask: ByteArray) -> BoolArray:
    result: BoolArray = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return result


def _ellipse(size: int) -> ByteArray:
    return u8(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))


def _clean(mask: BoolArray) -> BoolArray:
    """Open and close, drop specks, fill small holes."""
    kernel = _ellipse(max(3, (min(mask.shape) // 60) | 1))
    binary = u8(cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel))
    binary = u8(cv2.morphologyEx(binary, cv2.MORPH_CLOSE, kernel))
    kept = _large_regions(binary, 0.15)
    holes = _large_regions(1 - kept.astype(np.uint8), 0.005, touching_border=True)
    return kept | ~holes


def _large_regions(binary: ByteArray, share: float, touching_border: bool = False) -> BoolArray:
    """Regions of at least ``share`` of the largest one (and, with ``touching_border``, every
    region that reaches the border, as the background around a subject does)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count < 2:
        return binary.astype(np.bool_)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = areas >= share * areas.max()
    if touching_border:
        keep |= _reaches_border(stats[1:], binary.shape)
    lookup = np.concatenate([[False], keep])
    result: BoolArray = lookup[labels]
    return result


def _reaches_border(stats: npt.NDArray[Any], shape: tuple[int, ...]) -> BoolArray:
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right = left + stats[:, cv2.CC_STAT_WIDTH]
    bottom = top + stats[:, cv2.CC_STAT_HEIGHT]
    result: BoolArray = (left == 0) | (top == 0) | (right == shape[1]) | (bottom == shape[0])
    return result


# ------------------------------------------------------------------------ soft alpha


def _box(values: FloatArray, radius: int) -> Float32Array:
    return f32(cv2.boxFilter(values, -1, (2 * radius + 1, 2 * radius + 1)))


def _guided_coefficients(
    guide: Float32Array, source: Float32Array, radius: int, eps: float
) -> tuple[Float32Array, Float32Array]:
    """He et al.'s guided filter: ``source`` ~ ``a * guide + b`` locally; the smoothed a, b."""
    mean_i, mean_p = _box(guide, radius), _box(source, radius)
    covariance = _box(guide * source, radius) - mean_i * mean_p
    variance = _box(guide * guide, radius) - mean_i * mean_i
    a = covariance / (variance + eps)
    b = mean_p - a * mean_i
    return _box(a, radius), _box(b, radius)


def _soft_alpha(rgb: ByteArray, mask: BoolArray) -> ByteArray:
    """The work-resolution mask as a full-resolution alpha with a soft edge that follows the
    picture: the fast guided filter (He and Sun, 2015) - coefficients computed on a copy at
    most ``_GUIDE_SIDE`` long, upsampled and applied to the full-resolution grey image - and a
    contrast ramp (0.25 -> 0, 0.75 -> 255) folded into them."""
    height, width = rgb.shape[:2]
    grey = u8(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    scale = min(1.0, _GUIDE_SIDE / max(height, width))
    low = (max(1, round(width * scale)), max(1, round(height * scale)))
    guide = f32(cv2.resize(grey, low, interpolation=cv2.INTER_AREA)) / 255.0
    source = f32(cv2.resize(mask.astype(np.float32), low, interpolation=cv2.INTER_LINEAR))
    a, b = _guided_coefficients(guide, source, max(2, round(max(low) / 200)), 1e-3)
    slope, offset = f32(a * 2.0), f32((b - 0.25) * 510.0)  # alpha = slope * grey + offset
    if low != (width, height):
        slope = f32(cv2.resize(slope, (width, height), interpolation=cv2.INTER_LINEAR))
        offset = f32(cv2.resize(offset, (width, height), interpolation=cv2.INTER_LINEAR))
    product = cv2.multiply(f32(grey), slope)
    return u8(cv2.add(product, offset, dtype=cv2.CV_8U))  # saturates to 0..255


# ------------------------------------------------------------------------------ image


def _with_alpha(rgb: ByteArray, alpha: ByteArray) -> ByteArray:
    rgba = u8(cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA))
    rgba[..., 3] = alpha
    return rgba


def _cut(rgb: ByteArray) -> ByteArray:
    small = _work_copy(rgb, WORK_SIDE)
    mask, _ = _grabcut(small, _labels(small), _ITERATIONS)
    return _soft_alpha(rgb, _clean(mask))


def remove_image_background(image: bytes) -> Artifact:
    """The image as an RGBA PNG whose background is transparent.

    ValueError for bytes that are not an image (or over 40 MP).
    """
    rgb = decode_rgb(image)
    alpha = _cut(rgb)
    height, width = rgb.shape[:2]
    data = encode_png(_with_alpha(rgb, alpha))
    return Artifact(data, "png", width, height, description=describe(_DESCRIPTION))


# ------------------------------------------------------------------------------ video


class _Tracker:
    """Per-frame masks: GrabCut on keyframes, propagated with frozen models in between."""

    def __init__(self) -> None:
        self.models: _Models | None = None
        self.previous: BoolArray | None = None
        self.key_grey: Float32Array | None = None
        self.since_key = 0

    def mask(self, small: ByteArray) -> BoolArray:
        grey = f32(
            cv2.resize(
                cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), _SIGNATURE, interpolation=cv2.INTER_AREA
            )
        )
        if self._is_key(grey):
            mask = self._keyframe(small)
            self.key_grey, self.since_key = grey, 0
        else:
            mask = self._propagate(small)
            self.since_key += 1
        self.previous = _clean(mask)
        return self.previous

    def _is_key(self, grey: Float32Array) -> bool:
        if self.models is None or self.key_grey is None or self.since_key + 1 >= KEYFRAME_INTERVAL:
            return True
        return float(np.abs(grey - self.key_grey).mean()) > _CUT_DIFFERENCE

    def _keyframe(self, small: ByteArray) -> BoolArray:
        labels = _labels(small)
        if self.previous is not None:  # last frame's subject is probably still there
            labels[self.previous & (labels == cv2.GC_PR_BGD)] = cv2.GC_PR_FGD
        mask, self.models = _grabcut(small, labels, _KEY_ITERATIONS)
        return mask

    def _propagate(self, small: ByteArray) -> BoolArray:
        """Per-pixel Bayes: the keyframe's colour models, and the last mask, blurred, as the
        prior (a subject moves a little between frames)."""
        assert self.models is not None and self.previous is not None
        pixels = small.reshape(-1, 3).astype(np.float64)
        evidence = _log_likelihood(pixels, self.models.foreground) - _log_likelihood(
            pixels, self.models.background
        )
        sigma = max(1.0, _TEMPORAL_SIGMA * max(small.shape[:2]))
        prior = np.clip(
            cv2.GaussianBlur(self.previous.astype(np.float32), (0, 0), sigma), 0.02, 0.98
        )
        belief = evidence.reshape(prior.shape) + np.log(prior / (1.0 - prior))
        result: BoolArray = belief > 0
        return result


def _video_size(width: int, height: int) -> Size:
    scale = min(1.0, MAX_VIDEO_SIDE / max(width, height))
    return even(width * scale), even(height * scale)


def _cut_frames(frames: Iterator[ByteArray], counter: list[int]) -> Iterator[ByteArray]:
    tracker = _Tracker()
    for rgb in frames:
        mask = tracker.mask(_work_copy(rgb, VIDEO_WORK_SIDE))
        counter[0] += 1
        yield _with_alpha(rgb, _soft_alpha(rgb, mask))


def remove_video_background(video: bytes, *, max_seconds: float = 60) -> Artifact:
    """The video as WebM VP9 with alpha: the background transparent, frames, rate and sound
    kept. ValueError for bytes that are not a video, or one too long or over 3840x2160."""
    clip = read_video(video, max_seconds=max_seconds, max_pixels=MAX_VIDEO_PIXELS)
    size = _video_size(clip.width, clip.height)
    counter = [0]
    data = write_webm_alpha(_cut_frames(clip.frames(size), counter), clip.fps, size, clip.audio)
    seconds = float(counter[0] / clip.fps)
    what = f"{_DESCRIPTION}, on keyframes with graph-cut mask propagation between them"
    return Artifact(data, "webm", size[0], size[1], seconds, describe(what))
