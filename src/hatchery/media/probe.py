"""What a file's bytes are: an image (Pillow), a video or an audio file (PyAV), or nothing this
server reads. The name of the file is never looked at: uploads are stored without one."""

from __future__ import annotations

import re
import threading
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image, UnidentifiedImageError

SVG = "image/svg+xml"
READABLE = "PNG, JPEG, WebP, GIF, SVG, MP4, WebM, MOV, MP3, WAV, M4A, OGG, FLAC"

# Pillow's format -> (content type, extension); MPO is a camera JPEG holding several pictures.
IMAGE_FORMATS = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "MPO": ("image/jpeg", "jpg"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
}
_OPEN_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")  # a JPEG with MP data opens as MPO
# FFmpeg's demuxers read here; every other one (image pipes, subtitles, raw streams) is refused.
MOV = "mov,mp4,m4a,3gp,3g2,mj2"
MATROSKA = "matroska,webm"
CONTAINERS = (MOV, MATROSKA, "mp3", "wav", "ogg", "flac")
# Audio-only containers: demuxer -> (content type, extension).
AUDIO_CONTAINERS = {
    "mp3": ("audio/mpeg", "mp3"),
    "wav": ("audio/wav", "wav"),
    "ogg": ("audio/ogg", "ogg"),
    "flac": ("audio/flac", "flac"),
}
WEBM_CODECS = {"vp8", "vp9", "av1", "opus", "vorbis"}

_SNIFF_BYTES = 4096
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)
# ``warnings.catch_warnings`` swaps process-wide state: one thread at a time in here.
_WARNINGS = threading.Lock()
_SVG_ROOT = re.compile(
    rb"\A(?:\xef\xbb\xbf)?(?:\s*(?:<\?xml[^>]*>|<!--.*?-->|<!DOCTYPE[^>]*>))*\s*<svg[\s>/]",
    re.DOTALL,
)
_SVG_TAG = re.compile(rb"<svg\b[^>]*>", re.DOTALL)
_LENGTH = rb"\s*=\s*[\"']\s*([0-9]*\.?[0-9]+)\s*(?:px)?\s*[\"']"


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "IMAGE" | "VIDEO" | "AUDIO"
    content_type: str
    extension: str
    width: int | None
    height: int | None
    duration_seconds: float | None
    has_audio: bool
    has_video: bool


class NotMedia(ValueError):
    """The bytes are not an image, a video or an audio file this server can read."""

    def __init__(self, detail: str = "") -> None:
        message = (
            f"the bytes are not an image, video or audio file this server can read ({READABLE})"
        )
        super().__init__(f"{message}: {detail}" if detail else message)


def inspect(path: Path) -> MediaInfo:
    """What the file at ``path`` is, read from its bytes (a truncated file is refused)."""
    with path.open("rb") as file:
        head = file.read(_SNIFF_BYTES)
    if not head:
        raise NotMedia("the file is empty")
    if _SVG_ROOT.match(head):
        return _svg_info(head)
    return _image_info(path) or _container_info(path)


def open_image(path: Path) -> Image.Image:
    """``Image.open`` for the formats read here; a decompression bomb is :class:`NotMedia`."""
    with _WARNINGS, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(path, formats=_OPEN_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise NotMedia(f"the image is too large to decode safely ({exc})") from None


def video_stream(container: Any) -> Any | None:
    """The first video stream that is a picture sequence, not an attached cover image."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def display_size(
    width: int, height: int, aspect: Fraction | None, rotation: float
) -> tuple[int, int]:
    """The size a picture is shown at: its pixel aspect ratio and quarter turns applied."""
    if aspect and aspect > 0 and aspect != 1:
        width = max(1, round(width * aspect))
    if quarter_turns(rotation) % 2:
        return height, width
    return width, height


def quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns for a display-matrix rotation in degrees."""
    return round(rotation / 90) % 4


# --- images -----------------------------------------------------------------------------------


def _svg_info(head: bytes) -> MediaInfo:
    tag = _SVG_TAG.search(head)
    width = height = None
    if tag:
        width, height = _svg_length(tag[0], b"width"), _svg_length(tag[0], b"height")
        if width is None or height is None:
            width, height = _svg_viewbox(tag[0])
    return MediaInfo("IMAGE", SVG, "svg", width, height, None, False, True)


def _svg_length(tag: bytes, name: bytes) -> int | None:
    found = re.search(rb"\s" + name + _LENGTH, tag)
    return max(1, round(float(found[1]))) if found else None


def _svg_viewbox(tag: bytes) -> tuple[int | None, int | None]:
    found = re.search(rb"\sviewBox\s*=\s*[\"']([^\"']*)[\"']", tag)
    parts = found[1].replace(b",", b" ").split() if found else []
    try:
        width, height = (float(part) for part in parts[2:4])
    except ValueError:  # missing or not numbers
        return None, None
    if width <= 0 or height <= 0:
        return None, None
    return max(1, round(width)), max(1, round(height))


def _image_info(path: Path) -> MediaInfo | None:
    """The image at ``path``, or None when Pillow does not take it for one of its formats."""
    try:
        with open_image(path) as image:
            kind = image.format or ""
            image.verify()
        with open_image(path) as image:
            image.load()  # the first frame decodes: a truncated file fails here
            width, height = image.size
            turned = image.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF orientation
    except UnidentifiedImageError:
        return None
    except _IMAGE_ERRORS as exc:
        raise NotMedia(f"a broken or truncated image ({exc})") from None
    content_type, extension = IMAGE_FORMATS[kind]
    if turned:
        width, height = height, width
    return MediaInfo("IMAGE", content_type, extension, width, height, None, False, True)


# --- audio and video --------------------------------------------------------------------------


def _container_info(path: Path) -> MediaInfo:
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return _read_container(path, container)
    except av.FFmpegError as exc:
        raise NotMedia(f"no audio or video could be decoded ({exc})") from None


def _read_container(path: Path, container: Any) -> MediaInfo:
    name = container.format.name
    if name not in CONTAINERS:
        raise NotMedia(f"{container.format.long_name} files are not read here")
    video = video_stream(container)
    audio = container.streams.audio[0] if container.streams.audio else None
    main = video if video is not None else audio
    if main is None:
        raise NotMedia("the file holds no audio or video stream")
    _check_complete(path, container)
    frame = _first_frame(container, main)
    content_type, extension = _container_type(container, video, audio)
    width = height = None
    if video is not None:
        aspect = video.sample_aspect_ratio
        width, height = display_size(frame.width, frame.height, aspect, frame.rotation)
    kind = "AUDIO" if video is None else "VIDEO"
    duration = stream_seconds(container, main)
    return MediaInfo(
        kind, content_type, extension, width, height, duration, audio is not None, video is not None
    )


def _check_complete(path: Path, container: Any) -> None:
    """A file whose index points past its end was cut short (an MP4 with its index first)."""
    size = path.stat().st_size
    for stream in container.streams:
        entries = stream.index_entries
        if len(entries):
            last = entries[len(entries) - 1]
            if last.pos + last.size > size:
                raise NotMedia("the file is truncated")


def _first_frame(container: Any, stream: Any) -> Any:
    for frame in container.decode(stream):
        return frame
    raise NotMedia(f"its {stream.type} stream holds no frame that decodes")


def _container_type(container: Any, video: Any | None, audio: Any | None) -> tuple[str, str]:
    name = container.format.name
    if name == MOV:
        if video is None:
            return "audio/mp4", "m4a"
        if container.metadata.get("major_brand", "").strip() == "qt":
            return "video/quicktime", "mov"
        return "video/mp4", "mp4"
    if name == MATROSKA:
        return _matroska_type(video, audio)
    if video is not None and name == "ogg":
        return "video/ogg", "ogv"
    return AUDIO_CONTAINERS[name]


def _matroska_type(video: Any | None, audio: Any | None) -> tuple[str, str]:
    codecs = {stream.codec_context.name for stream in (video, audio) if stream is not None}
    webm = codecs <= WEBM_CODECS
    if video is None:
        return ("audio/webm", "webm") if webm else ("audio/x-matroska", "mka")
    return ("video/webm", "webm") if webm else ("video/x-matroska", "mkv")


def stream_seconds(container: Any, stream: Any) -> float | None:
    """A PyAV container's length in seconds, or its stream's; None when neither says."""
    if container.duration is not None and container.duration > 0:
        return float(container.duration / av.time_base)
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None
