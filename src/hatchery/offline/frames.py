"""Shared image, video and audio I/O for the local provider's offline tools.

* Images are decoded with Pillow (PNG, JPEG, WebP, GIF's first frame, BMP, TIFF), EXIF
  orientation applied, and refused above :data:`MAX_IMAGE_PIXELS` before their pixels are
  decoded (a decompression-bomb guard).
* Videos are decoded with PyAV (FFmpeg) into upright numpy frames with square pixels (the
  display matrix and the pixel aspect ratio applied). :func:`read_video` checks the container,
  the frame size and the length from the headers; :meth:`Clip.frames` decodes lazily (a minute
  of 1080p would not fit in memory as a list) and checks the length again while it decodes.
  WebM VP9 alpha (a second VP9 stream in Matroska ``BlockAdditional``) is read with the
  ``libvpx-vp9`` decoder, since FFmpeg's own VP9 decoder drops it.
* Audio is any stream PyAV decodes, resampled to 48 kHz stereo float PCM (:class:`Audio`).
* Videos are written as H.264 ``yuv420p`` MP4 (BT.709, ``moov`` first for streaming) with AAC
  sound, as WebM VP9 (``yuva420p`` when it carries alpha, Opus sound), or as QuickTime: ProRes
  4444 (``yuva444p10le``) with alpha, H.264 without. VP9 alpha was checked to survive a round
  trip through this PyAV build, so no ProRes fallback is needed for WebM.

No files, no network, no global state besides the lock around Pillow's warning filter.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from hatchery.media.probe import (
    CONTAINERS,
    display_size,
    quarter_turns,
    stream_seconds,
    video_stream,
)
from hatchery.providers.render import faststart

__all__ = [
    "AUDIO_RATE",
    "MADE_BY",
    "MAX_ASPECT",
    "MAX_IMAGE_PIXELS",
    "Audio",
    "ByteArray",
    "Clip",
    "FloatArray",
    "Size",
    "decode_audio",
    "decode_image",
    "decode_rgb",
    "describe",
    "encode_png",
    "even",
    "f32",
    "fit_size",
    "flatten",
    "mux_audio",
    "read_video",
    "u8",
    "write_mp4",
    "write_video",
    "write_webm_alpha",
]

ByteArray = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.floating[Any]]


def u8(array: npt.NDArray[Any]) -> ByteArray:
    """``array`` as uint8 (no copy when it is already): narrows OpenCV's return types."""
    return array.astype(np.uint8, copy=False)


def f32(array: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """``array`` as float32 (no copy when it is already)."""
    return array.astype(np.float32, copy=False)


Size = tuple[int, int]  # (width, height)

MADE_BY = "made by Hatchery's local provider, not an AI model."
MAX_IMAGE_PIXELS = 40_000_000
"""Images above this many pixels are refused before decoding (decompression-bomb guard)."""
MAX_ASPECT = 4
""":func:`fit_size` clamps aspect ratios to at most 4:1 (and 1:4)."""
AUDIO_RATE = 48_000

_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_WARNINGS = threading.Lock()  # warnings.catch_warnings swaps process-wide state
_PNG_LEVEL = 3
_MAX_FPS = 120
_DEFAULT_FPS = Fraction(24)
_AUDIO_CHUNK = 1024
_FADE_SAMPLES = 480  # 10 ms fade where a soundtrack is cut short, so that it does not click
_LIBVPX = {"vp8": "libvpx", "vp9": "libvpx-vp9"}
_NOT_VIDEO = "send an MP4, WebM or MOV video"
_NOT_AUDIO = "send an MP3, WAV, M4A, OGG or FLAC file, or a video with sound"


def describe(what: str) -> str:
    """An artifact description: what made it, then the local provider's disclaimer."""
    return f"{what}; {MADE_BY}"


# ---------------------------------------------------------------------------------- sizes


def even(value: float) -> int:
    """``value`` rounded to the nearest even integer, at least 2 (4:2:0 video needs it)."""
    return max(2, 2 * round(value / 2))


def fit_size(aspect_w: int, aspect_h: int, long_side: int) -> Size:
    """``(width, height)``, both even, with ``long_side`` on the longer side.

    Any positive integer ratio is accepted; ratios more extreme than 4:1 (or 1:4) are clamped
    to 4:1, since thinner frames are not useful pictures and break 4:2:0 video at small sizes.
    """
    if aspect_w < 1 or aspect_h < 1:
        raise ValueError(
            f"the aspect ratio must be two positive integers, got {aspect_w}:{aspect_h}"
        )
    if long_side < 2:
        raise ValueError(f"the long side must be at least 2 pixels, got {long_side}")
    ratio = min(max(aspect_w / aspect_h, 1 / MAX_ASPECT), MAX_ASPECT)
    longer = even(long_side)
    shorter = even(longer / max(ratio, 1 / ratio))
    return (longer, shorter) if ratio >= 1 else (shorter, longer)


# --------------------------------------------------------------------------------- images


def _open_image(data: bytes) -> Image.Image:
    with _WARNINGS, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            image = None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ValueError(
                f"the image could not be read ({exc}); send a PNG, JPEG, WebP, GIF, BMP or TIFF"
            ) from None
    width, height = image.size if image is not None else (0, 0)
    if image is None or width * height > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"the image is too large to decode safely (over {MAX_IMAGE_PIXELS:,} pixels); "
            "send a smaller one"
        )
    return image


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def _shrunk(image: Image.Image, max_side: int | None) -> Image.Image:
    """``image`` reduced by an integer factor while it stays at least ``max_side`` long."""
    if max_side is None:
        return image
    factor = max(image.size) // max(1, max_side)
    return image.reduce(factor) if factor >= 2 else image


def decode_image(data: bytes, *, max_side: int | None = None) -> ByteArray:
    """Decode image bytes to an upright ``(h, w, 3)`` RGB or ``(h, w, 4)`` RGBA uint8 array.

    RGBA only when the image has transparency. With ``max_side`` the image is reduced (JPEG
    DCT scaling, else a box filter) by an integer factor that keeps its long side at least
    ``max_side``: callers that shrink the picture anyway decode a large one much faster.
    Raises ValueError for bytes that are not an image and for images over 40 MP.
    """
    image = _open_image(data)
    try:
        if max_side is not None and image.format == "JPEG":
            image.draft("RGB", (max_side, max_side))
        image.load()
        upright = _shrunk(ImageOps.exif_transpose(image), max_side)
        converted = upright.convert("RGBA" if _has_alpha(upright) else "RGB")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ValueError(f"the image is broken or truncated ({exc}); send it again") from None
    return np.array(converted, dtype=np.uint8)


def decode_rgb(data: bytes, *, max_side: int | None = None) -> ByteArray:
    """:func:`decode_image` as RGB: transparent areas are composited on mid grey."""
    return flatten(decode_image(data, max_side=max_side))


def flatten(pixels: ByteArray) -> ByteArray:
    """RGB of an RGB or RGBA array; transparency is composited on mid grey."""
    if pixels.shape[2] == 3:
        return pixels
    alpha = pixels[..., 3:].astype(np.uint16)
    mixed = (pixels[..., :3] * alpha + 128 * (255 - alpha) + 127) // 255
    return mixed.astype(np.uint8)


def encode_png(pixels: ByteArray) -> bytes:
    """PNG bytes of an ``(h, w, 3)`` RGB or ``(h, w, 4)`` RGBA uint8 array."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(out, format="PNG", compress_level=_PNG_LEVEL)
    return out.getvalue()


# ---------------------------------------------------------------------------------- audio


@dataclass(frozen=True)
class Audio:
    """Float PCM, shape ``(channels, samples)`` (stereo from :func:`decode_audio`), in [-1, 1]."""

    samples: FloatArray
    rate: int = AUDIO_RATE

    @property
    def seconds(self) -> float:
        return float(self.samples.shape[1] / self.rate)


def _open(data: bytes) -> Any:
    return av.open(io.BytesIO(data), metadata_errors="ignore")


def decode_audio(data: bytes, *, max_seconds: float | None = None) -> Audio:
    """The first audio stream of an audio or video file, as 48 kHz stereo float PCM.

    Decoding stops after ``max_seconds`` (the rest is not needed). ValueError when PyAV
    cannot read the bytes or they hold no audio stream.
    """
    try:
        with _open(data) as container:
            if not container.streams.audio:
                raise ValueError(f"the file holds no audio stream; {_NOT_AUDIO}")
            return _read_audio(container, container.streams.audio[0], max_seconds)
    except av.FFmpegError as exc:
        raise ValueError(f"the audio could not be decoded ({exc}); {_NOT_AUDIO}") from None


def _read_audio(container: Any, stream: Any, max_seconds: float | None) -> Audio:
    limit = None if max_seconds is None else max(0, round(max_seconds * AUDIO_RATE))
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
    chunks: list[FloatArray] = []
    total = 0
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().astype(np.float32))
            total += chunks[-1].shape[1]
        if limit is not None and total >= limit:
            break
    else:
        chunks.extend(out.to_ndarray().astype(np.float32) for out in resampler.resample(None))
    samples = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)
    return Audio(np.ascontiguousarray(samples[:, :limit]))


def _as_audio(audio: Audio | bytes, seconds: float) -> Audio:
    return audio if isinstance(audio, Audio) else decode_audio(audio, max_seconds=seconds + 1)


def _fitted(audio: Audio, seconds: float) -> FloatArray:
    """The samples trimmed (with a short fade-out) or padded with silence to ``seconds``."""
    wanted = max(1, round(seconds * audio.rate))
    samples = audio.samples.astype(np.float32)
    if samples.shape[1] >= wanted:
        samples = samples[:, :wanted].copy()
        fade = min(_FADE_SAMPLES, wanted)
        samples[:, wanted - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        return samples
    padding = np.zeros((samples.shape[0], wanted - samples.shape[1]), np.float32)
    return np.concatenate([samples, padding], axis=1)


def _audio_out(container: Any, codec: str, audio: Audio | bytes) -> Any:
    """A new audio stream for ``audio`` (the bytes of a file decode to 48 kHz stereo)."""
    if isinstance(audio, bytes):
        return container.add_stream(codec, rate=AUDIO_RATE, layout="stereo")
    if audio.samples.ndim != 2 or audio.samples.shape[0] not in (1, 2):
        raise ValueError(f"audio samples must be (1 or 2, n), got {audio.samples.shape}")
    layout = "stereo" if audio.samples.shape[0] == 2 else "mono"
    return container.add_stream(codec, rate=audio.rate, layout=layout)


def _write_audio(container: Any, stream: Any, audio: Audio, seconds: float) -> None:
    """Encode ``audio``, fitted to ``seconds``, into ``stream`` (made by :func:`_audio_out`)."""
    samples = np.clip(_fitted(audio, seconds), -1.0, 1.0)
    layout = "stereo" if samples.shape[0] == 2 else "mono"
    for start in range(0, samples.shape[1], _AUDIO_CHUNK):
        chunk = np.ascontiguousarray(samples[:, start : start + _AUDIO_CHUNK])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = audio.rate, start, Fraction(1, audio.rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


# ---------------------------------------------------------------------------------- video


@dataclass(frozen=True)
class Clip:
    """A checked video: its bytes plus what the headers and the first frame say.

    ``width`` x ``height`` is the display size (upright, square pixels); ``seconds`` is the
    header's length (``None`` when the file does not say); ``audio`` is the decoded first audio
    stream, if any; ``has_alpha`` is true for a video with an alpha channel.
    """

    data: bytes
    width: int
    height: int
    fps: Fraction
    seconds: float | None
    audio: Audio | None
    has_alpha: bool
    max_seconds: float
    alpha_decoder: str | None = None  # "libvpx-vp9" for WebM alpha, which FFmpeg's vp9 drops

    def frames(self, size: Size | None = None, *, alpha: bool = False) -> Iterator[ByteArray]:
        """Decode the frames, upright, as ``(h, w, 3)`` RGB (``(h, w, 4)`` RGBA with ``alpha``,
        opaque when the video has none), scaled to ``size`` (default: the display size).

        Raises ValueError once the video turns out longer than ``max_seconds``.
        """
        target = size or (self.width, self.height)
        try:
            with _open(self.data) as container:
                stream = video_stream(container)
                decoder = _decoder(self.alpha_decoder) if alpha else None
                origin: float | None = None
                for count, frame in enumerate(_decoded(container, stream, decoder)):
                    origin = frame.time if origin is None else origin
                    if self._past_end(frame.time, origin, count):
                        raise ValueError(_too_long(self.max_seconds))
                    yield _picture(frame, target, "rgba" if alpha else "rgb24")
        except av.FFmpegError as exc:
            raise ValueError(f"a frame of the video could not be decoded ({exc})") from None

    def _past_end(self, time: float | None, origin: float | None, count: int) -> bool:
        """Past ``max_seconds`` by the frame's time or by the count of frames at the stream's
        rate, whichever comes first: frames that all claim one time cannot run on forever."""
        if count >= math.ceil((self.max_seconds + 0.5) * self.fps):
            return True
        return time is not None and origin is not None and time - origin >= self.max_seconds + 0.5


def _too_long(max_seconds: float) -> str:
    return f"the video is longer than {max_seconds:g} s; send a shorter one"


def _decoder(name: str | None) -> Any:
    if name is None:
        return None
    decoder = av.CodecContext.create(name, "r")
    decoder.thread_count = 2
    return decoder


def _decoded(container: Any, stream: Any, decoder: Any | None) -> Iterator[Any]:
    stream.thread_type = "AUTO"
    if decoder is None:
        yield from container.decode(stream)
        return
    for packet in container.demux(stream):  # the last packet is the empty flush packet
        yield from decoder.decode(packet)


def _picture(frame: Any, size: Size, pixel_format: str) -> ByteArray:
    turns = quarter_turns(frame.rotation)
    width, height = size if turns % 2 == 0 else size[::-1]
    pixels: ByteArray = frame.to_ndarray(
        width=width, height=height, format=pixel_format, interpolation="BICUBIC"
    )
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


def read_video(data: bytes, *, max_seconds: float, max_pixels: int) -> Clip:
    """Check a video and decode its first frame and its sound; the frames decode lazily.

    ValueError (saying what to send instead) for bytes that are not a video, for a video
    longer than ``max_seconds`` or with frames over ``max_pixels``.
    """
    try:
        with _open(data) as container:
            clip = _inspect(data, container, max_seconds, max_pixels)
    except av.FFmpegError as exc:
        raise ValueError(f"the video could not be decoded ({exc}); {_NOT_VIDEO}") from None
    return clip


def _inspect(data: bytes, container: Any, max_seconds: float, max_pixels: int) -> Clip:
    if container.format.name not in CONTAINERS:
        raise ValueError(
            f"{container.format.long_name} is not a video format read here; {_NOT_VIDEO}"
        )
    stream = video_stream(container)
    if stream is None:
        raise ValueError(f"the file holds no video stream; {_NOT_VIDEO}")
    seconds = stream_seconds(container, stream)
    if seconds is not None and seconds > max_seconds + 0.5:
        raise ValueError(_too_long(max_seconds))
    frame = next(iter(container.decode(stream)), None)
    if frame is None:
        raise ValueError(f"the video holds no frame that decodes; {_NOT_VIDEO}")
    width, height = display_size(
        frame.width, frame.height, stream.sample_aspect_ratio, frame.rotation
    )
    if width * height > max_pixels:
        raise ValueError(
            f"the video is {width}x{height}, over {max_pixels:,} pixels a frame; send a smaller one"
        )
    audio = decode_audio(data, max_seconds=max_seconds + 1) if container.streams.audio else None
    return Clip(
        data,
        width,
        height,
        _rate(stream),
        seconds,
        audio,
        _alpha(stream),
        max_seconds,
        _LIBVPX.get(stream.codec_context.name) if _webm_alpha(stream) else None,
    )


def _rate(stream: Any) -> Fraction:
    """The frame rate: the average, else FFmpeg's guess, else 24; at most 120."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate and 0 < rate <= _MAX_FPS:
            return Fraction(rate).limit_denominator(1001)
    return _DEFAULT_FPS


def _webm_alpha(stream: Any) -> bool:
    """WebM VP8/VP9 alpha: a second stream in ``BlockAdditional``, flagged in the metadata."""
    metadata = {key.lower(): value for key, value in stream.metadata.items()}
    return bool(metadata.get("alpha_mode") == "1")


def _alpha(stream: Any) -> bool:
    if _webm_alpha(stream):
        return True
    name = stream.codec_context.pix_fmt
    return name is not None and any(c.is_alpha for c in av.VideoFormat(name).components)


# -------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class _Codec:
    container: str
    name: str
    pix_fmt: str
    options: dict[str, str]
    audio: str
    alpha: bool = False


_H264 = {"preset": "veryfast", "crf": "23"}
_VP9 = {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "32", "b": "0"}
_CODECS = {
    ("mp4", False): _Codec("mp4", "libx264", "yuv420p", _H264, "aac"),
    ("mov", False): _Codec("mov", "libx264", "yuv420p", _H264, "aac"),
    ("mov", True): _Codec(
        "mov", "prores_ks", "yuva444p10le", {"profile": "4444"}, "aac", alpha=True
    ),
    ("webm", False): _Codec("webm", "libvpx-vp9", "yuv420p", _VP9, "libopus"),
    ("webm", True): _Codec("webm", "libvpx-vp9", "yuva420p", _VP9, "libopus", alpha=True),
}


def write_video(
    frames: Iterable[ByteArray],
    fps: Fraction | float,
    size: Size,
    *,
    container: str,
    alpha: bool = False,
    audio: Audio | bytes | None = None,
) -> bytes:
    """Encode ``(h, w, 3)`` RGB frames (``(h, w, 4)`` RGBA with ``alpha``) at a constant rate.

    ``container`` "mp4" (H.264), "webm" (VP9; ``yuva420p`` with alpha) or "mov" (ProRes 4444
    with alpha, else H.264). ``audio`` (PCM or the bytes of any audio file) becomes the
    soundtrack, trimmed or padded with silence to the video's length (AAC, Opus in WebM).
    ``size`` must be even.
    """
    codec = _CODECS.get((container, alpha))
    if codec is None:
        raise ValueError(f"cannot write {container!r} video{' with alpha' if alpha else ''}")
    if size[0] < 2 or size[1] < 2 or size[0] % 2 or size[1] % 2:
        raise ValueError(f"video dimensions must be even, got {size[0]}x{size[1]}")
    rate = Fraction(fps).limit_denominator(1001)
    out = io.BytesIO()
    with av.open(out, "w", format=codec.container) as target:
        video = _video_out(target, codec, rate, size)
        sound = None if audio is None else _audio_out(target, codec.audio, audio)
        count = _write_frames(target, video, codec.alpha, frames, rate, size)
        if audio is not None:
            seconds = float(count / rate)
            _write_audio(target, sound, _as_audio(audio, seconds), seconds)
    data = out.getvalue()
    return data if codec.container == "webm" else faststart(data)


def _video_out(target: Any, codec: _Codec, rate: Fraction, size: Size) -> Any:
    stream = target.add_stream(codec.name, rate=rate)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], codec.pix_fmt
    stream.options = dict(codec.options)
    context = stream.codec_context
    context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
    context.color_range = 1  # limited ("tv") range
    if codec.name == "libx264":
        context.gop_size = max(1, round(2 * rate))  # a keyframe every 2 s
    else:
        context.thread_count = 2
    return stream


def _write_frames(
    target: Any, stream: Any, alpha: bool, frames: Iterable[ByteArray], rate: Fraction, size: Size
) -> int:
    channels = 4 if alpha else 3
    count = 0
    for count, pixels in enumerate(frames, start=1):
        if pixels.shape != (size[1], size[0], channels) or pixels.dtype != np.uint8:
            raise ValueError(
                f"frame {count} is {pixels.shape}, expected {(size[1], size[0], channels)}"
            )
        frame = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(pixels), format="rgba" if channels == 4 else "rgb24"
        )
        frame = frame.reformat(
            format=stream.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG"
        )
        frame.pts, frame.time_base = count - 1, 1 / rate
        target.mux(stream.encode(frame))
    if count == 0:
        raise ValueError("a video needs at least one frame")
    target.mux(stream.encode(None))
    return count


def write_mp4(
    frames: Iterable[ByteArray],
    fps: Fraction | float,
    size: Size,
    audio: Audio | bytes | None = None,
) -> bytes:
    """H.264 ``yuv420p`` MP4 (``moov`` first) of RGB frames, with optional AAC sound."""
    return write_video(frames, fps, size, container="mp4", audio=audio)


def write_webm_alpha(
    frames_rgba: Iterable[ByteArray],
    fps: Fraction | float,
    size: Size,
    audio: Audio | bytes | None = None,
) -> bytes:
    """WebM VP9 ``yuva420p`` of RGBA frames: the alpha survives (read it with ``libvpx-vp9``)."""
    return write_video(frames_rgba, fps, size, container="webm", alpha=True, audio=audio)


def mux_audio(video_mp4: bytes, audio: Audio | bytes) -> bytes:
    """The MP4 with its sound replaced by ``audio`` (PCM, or any audio file PyAV reads).

    The video packets are copied untouched; the sound is trimmed or padded with silence to the
    video's length and encoded as AAC.
    """
    try:
        with _open(video_mp4) as source:
            stream = video_stream(source)
            if stream is None:
                raise ValueError(f"the file holds no video stream; {_NOT_VIDEO}")
            header = stream_seconds(source, stream)
            out = io.BytesIO()
            with av.open(out, "w", format="mp4") as target:
                copy = target.add_stream_from_template(stream)
                sound = _audio_out(target, "aac", audio)
                seconds = _copy_packets(source, stream, target, copy) or header or 0.0
                _write_audio(target, sound, _as_audio(audio, seconds), seconds)
    except av.FFmpegError as exc:
        raise ValueError(f"the video could not be remuxed ({exc}); {_NOT_VIDEO}") from None
    return faststart(out.getvalue())


def _copy_packets(source: Any, stream: Any, target: Any, copy: Any) -> float:
    """Copy the video packets to ``copy``; return where the last one ends, in seconds."""
    end = 0.0
    for packet in source.demux(stream):
        if packet.dts is None:  # the flush packet
            continue
        if packet.pts is not None and packet.time_base is not None:
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        packet.stream = copy
        target.mux(packet)
    return end
