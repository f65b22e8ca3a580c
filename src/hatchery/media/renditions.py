"""The renditions of a file: a JPEG thumbnail, a preview a browser shows (WebP/JPEG, H.264 MP4
or AAC), and an HLS rendition of a video or an audio file. Transcoding is bounded: media longer
than :data:`MAX_SECONDS` is refused with :class:`TooLong`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps

from hatchery.media.probe import (
    SVG,
    MediaInfo,
    display_size,
    open_image,
    quarter_turns,
    video_stream,
)

MAX_SECONDS = 600  # 10 minutes of media at most are transcoded
THUMBNAIL_BOX = (256, 256)
PREVIEW_BOX = (1280, 1280)
VIDEO_BOX = (1280, 720)  # a video preview or HLS rendition is at most 720 px high
AUDIO_BITRATE = 128_000
KEYFRAME_SECONDS = 2  # seeking granularity, and where the ~4 s HLS segments may be cut
HLS_SECONDS = 4

_MAX_FRAMES = MAX_SECONDS * 500  # audio and video frames together, whatever the timestamps say
_VIDEO_TIME_BASE = Fraction(1, 90000)
_TURNS = {
    1: Image.Transpose.ROTATE_90,
    2: Image.Transpose.ROTATE_180,
    3: Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True)
class Rendition:
    path: Path
    content_type: str
    width: int | None
    height: int | None
    size: int


class TooLong(ValueError):
    """The media is longer than the renditions are made for."""


def thumbnail(source: Path, info: MediaInfo, out_dir: Path) -> Rendition | None:
    """A JPEG that fits in 256x256; None for audio and SVG (which is not rasterised here)."""
    if info.kind == "AUDIO" or info.content_type == SVG:
        return None
    if info.kind == "VIDEO":
        picture = _video_still(source, info, THUMBNAIL_BOX)
    else:
        picture = _image(source, THUMBNAIL_BOX)
    return _save(_flatten(picture), out_dir / "thumbnail.jpg")


def preview(source: Path, info: MediaInfo, out_dir: Path) -> Rendition | None:
    """What a browser shows: an image that fits in 1280x1280 (WebP when it has transparency, else
    JPEG), an H.264/AAC MP4 at most 720 px high, or AAC audio in an M4A; None for SVG."""
    if info.kind == "IMAGE":
        if info.content_type == SVG:
            return None
        picture = _image(source, PREVIEW_BOX)
        if _has_alpha(picture):
            return _save(picture.convert("RGBA"), out_dir / "preview.webp")
        return _save(_flatten(picture), out_dir / "preview.jpg")
    _check_length(info)
    if info.kind == "VIDEO":
        path = out_dir / "preview.mp4"
        size = _transcode(source, info, str(path), "mp4", {"movflags": "faststart"})
        return _rendition(path, "video/mp4", size)
    path = out_dir / "preview.m4a"
    _transcode(source, info, str(path), "ipod", {"movflags": "faststart"})
    return _rendition(path, "audio/mp4", None)


def hls(source: Path, info: MediaInfo, out_dir: Path) -> Path:
    """A VOD HLS rendition in ``out_dir``: ``index.m3u8`` and ~4 s MPEG-TS segments (H.264 at most
    720 px high and AAC, or AAC alone), named relative to the playlist. Returns the playlist."""
    if info.kind not in ("VIDEO", "AUDIO"):
        raise ValueError(f"an HLS rendition is made of a video or an audio file, not {info.kind}")
    _check_length(info)
    playlist = out_dir / "index.m3u8"
    options = {
        "hls_time": str(HLS_SECONDS),
        "hls_playlist_type": "vod",
        "hls_list_size": "0",
        "hls_segment_type": "mpegts",
        "hls_segment_filename": str(out_dir / "seg%03d.ts"),
    }
    _transcode(source, info, str(playlist), "hls", options)
    lines = playlist.read_text().splitlines()
    relative = [line if line.startswith("#") or not line else Path(line).name for line in lines]
    playlist.write_text("\n".join(relative) + "\n")
    return playlist


def _check_length(info: MediaInfo) -> None:
    if info.duration_seconds is not None and info.duration_seconds > MAX_SECONDS:
        raise TooLong(_too_long(info.duration_seconds))


def _too_long(seconds: float | None) -> str:
    length = "longer than that" if seconds is None else f"{seconds:.0f} s long"
    return (
        f"renditions are made of media of at most {MAX_SECONDS} s "
        f"({MAX_SECONDS / 60:g} minutes); this one is {length}"
    )


def _rendition(path: Path, content_type: str, size: tuple[int, int] | None) -> Rendition:
    width, height = size if size else (None, None)
    return Rendition(path, content_type, width, height, path.stat().st_size)


# --- pictures ---------------------------------------------------------------------------------


def _image(source: Path, box: tuple[int, int]) -> Image.Image:
    """The first frame of the image, upright (EXIF orientation), fitting in ``box``."""
    with open_image(source) as image:
        image.thumbnail(box, Image.Resampling.LANCZOS)  # decodes a JPEG at a reduced scale
        upright = ImageOps.exif_transpose(image)
    return upright


def _has_alpha(image: Image.Image) -> bool:
    if image.mode == "P":
        return "transparency" in image.info
    if "A" not in image.getbands():
        return False
    low = image.getchannel("A").getextrema()[0]
    return isinstance(low, int | float) and low < 255  # all opaque is no transparency


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composed over white."""
    if not _has_alpha(image):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _save(image: Image.Image, path: Path) -> Rendition:
    if path.suffix == ".webp":
        image.save(path, "WEBP", quality=85, method=4)
        content_type = "image/webp"
    else:
        image.save(path, "JPEG", quality=85, optimize=True)
        content_type = "image/jpeg"
    return _rendition(path, content_type, image.size)


def _fit(width: int, height: int, box: tuple[int, int], even: bool = False) -> tuple[int, int]:
    """``width`` x ``height`` scaled down (never up) to fit in ``box``, aspect kept."""
    scale = min(1.0, box[0] / width, box[1] / height)
    step = 2 if even else 1
    fitted_width = max(step, round(width * scale) // step * step)
    fitted_height = max(step, round(height * scale) // step * step)
    return fitted_width, fitted_height


def _video_still(source: Path, info: MediaInfo, box: tuple[int, int]) -> Image.Image:
    """A frame about 1 s in (the first one of a clip shorter than 2 s), fitting in ``box``."""
    at = 1.0 if (info.duration_seconds or 0) >= 2 else 0.0
    with av.open(str(source), metadata_errors="ignore") as container:
        stream = video_stream(container)
        if stream is None:
            raise ValueError("the video has no video stream")
        stream.codec_context.thread_type = "AUTO"
        origin = _origin(container)
        chosen = None
        for count, frame in enumerate(container.decode(stream)):
            chosen = frame
            if frame.time is None or frame.time - origin >= at or count >= 300:
                break
    if chosen is None:
        raise ValueError("the video has no frame that decodes")
    width, height = _shown_size(chosen, stream)
    return _Pictures(_fit(width, height, box)).picture(chosen)


def _shown_size(frame: Any, stream: Any) -> tuple[int, int]:
    return display_size(frame.width, frame.height, stream.sample_aspect_ratio, frame.rotation)


def _origin(container: Any) -> float:
    """When the media starts, in seconds: output timestamps count from there."""
    start = container.start_time
    return float(start / av.time_base) if start is not None and start > 0 else 0.0


class _Pictures:
    """Decoded frames at one display size, square pixels, turned upright."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def _scaled(self, frame: Any, pixel_format: str) -> tuple[Any, int]:
        turns = quarter_turns(frame.rotation)
        width, height = self.size if turns % 2 == 0 else self.size[::-1]
        return frame.reformat(width=width, height=height, format=pixel_format), turns

    def picture(self, frame: Any) -> Image.Image:
        scaled, turns = self._scaled(frame, "rgb24")
        image: Image.Image = scaled.to_image()
        return image.transpose(_TURNS[turns]) if turns else image

    def frame(self, frame: Any) -> Any:
        """A yuv420p frame for the encoder (its timestamps are set by the caller)."""
        scaled, turns = self._scaled(frame, "yuv420p")
        if turns:
            upright = np.ascontiguousarray(np.rot90(scaled.to_ndarray(format="rgb24"), turns))
            scaled = av.VideoFrame.from_ndarray(upright, format="rgb24").reformat(format="yuv420p")
        return scaled


# --- transcoding ------------------------------------------------------------------------------


class _VideoOut:
    """H.264 at the output size, timestamps kept (variable frame rates stay variable)."""

    def __init__(self, output: Any, source: Any, info: MediaInfo) -> None:
        width, height = info.width, info.height  # upright, square pixels
        if width is None or height is None:
            width, height = source.codec_context.width, source.codec_context.height
        self.size = _fit(width, height, VIDEO_BOX, even=True)
        self.pictures = _Pictures(self.size)
        rate = source.average_rate or source.guessed_rate or 30
        rate = min(Fraction(rate), Fraction(60))
        self.stream = output.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"preset": "veryfast", "crf": "23"}
        context = self.stream.codec_context
        context.time_base = _VIDEO_TIME_BASE
        context.gop_size = max(1, round(rate * KEYFRAME_SECONDS))
        self.step = max(1, round(1 / (rate * _VIDEO_TIME_BASE)))  # a frame's nominal duration
        self.held: Any | None = None  # a frame waits for the next one to know its duration
        self.durations: dict[int, int] = {}  # pts -> duration of the frames in the encoder

    def packets(self, frame: Any, origin: float) -> list[Any]:
        pts = 0 if self.held is None else self.held.pts + 1  # strictly increasing
        if frame.time is not None:
            pts = max(pts, round((frame.time - origin) / _VIDEO_TIME_BASE))
        out = self.pictures.frame(frame)  # may be ``frame`` itself
        out.pts, out.time_base = pts, _VIDEO_TIME_BASE
        held, self.held = self.held, out
        if held is None:
            return []
        self.step = out.pts - held.pts
        return self._encode(held, self.step)

    def flush(self) -> list[Any]:
        packets = [] if self.held is None else self._encode(self.held, self.step)
        return packets + self._encode(None, 0)

    def _encode(self, frame: Any | None, duration: int) -> list[Any]:
        """The encoder's packets, with the durations of their frames (the HLS muxer sums them
        into the segment durations; x264 leaves them 0)."""
        if frame is not None:
            self.durations[frame.pts] = duration
        packets = list(self.stream.encode(frame))
        for packet in packets:
            packet.duration = self.durations.pop(packet.pts, self.step)
        return packets


class _AudioOut:
    """AAC at 128 kbit/s, mono or stereo, 44.1 or 48 kHz."""

    def __init__(self, output: Any, source: Any) -> None:
        layout = "mono" if source.codec_context.layout.nb_channels == 1 else "stereo"
        rate = source.sample_rate if source.sample_rate in (44100, 48000) else 48000
        self.stream = output.add_stream("aac", rate=rate)
        self.stream.layout = layout
        self.stream.bit_rate = AUDIO_BITRATE
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=1024)
        self.rate = rate
        self.next: int | None = None  # the pts of the next sample out

    def packets(self, frame: Any, origin: float) -> list[Any]:
        if self.next is None:
            start = 0.0 if frame.time is None else frame.time - origin
            self.next = max(0, round(start * self.rate))
        return self._encode(self.resampler.resample(frame))

    def flush(self) -> list[Any]:
        return self._encode([*self.resampler.resample(None), None])

    def _encode(self, frames: list[Any]) -> list[Any]:
        packets = []
        for frame in frames:
            if frame is not None:
                frame.pts, frame.time_base = self.next or 0, Fraction(1, self.rate)
                self.next = (self.next or 0) + frame.samples
            packets.extend(self.stream.encode(frame))
        return packets


def _transcode(
    source: Path, info: MediaInfo, target: str, format: str, options: dict[str, str]
) -> tuple[int, int] | None:
    """Write ``source`` as H.264/AAC (or AAC alone) into ``target``; returns the video size."""
    with (
        av.open(str(source), metadata_errors="ignore") as container,
        av.open(target, "w", format=format, options=options) as output,
    ):
        video_in = video_stream(container) if info.kind == "VIDEO" else None
        audio_in = container.streams.audio[0] if container.streams.audio else None
        outs: dict[int, _VideoOut | _AudioOut] = {}
        if video_in is not None:
            video_in.codec_context.thread_type = "AUTO"
            outs[video_in.index] = _VideoOut(output, video_in, info)
        if audio_in is not None:
            outs[audio_in.index] = _AudioOut(output, audio_in)
        if not outs:
            raise ValueError("the file has no audio or video stream to transcode")
        _pump(container, output, outs)
        video = outs.get(video_in.index) if video_in is not None else None
    return video.size if isinstance(video, _VideoOut) else None


def _pump(container: Any, output: Any, outs: dict[int, _VideoOut | _AudioOut]) -> None:
    origin = _origin(container)
    streams = [container.streams[index] for index in outs]
    for count, (index, frame) in enumerate(_frames(container, streams)):
        if count > _MAX_FRAMES or (frame.time or 0) - origin > MAX_SECONDS + 1:
            raise TooLong(_too_long(None))
        output.mux(outs[index].packets(frame, origin))
    for out in outs.values():
        output.mux(out.flush())


def _frames(container: Any, streams: list[Any]) -> Iterator[tuple[int, Any]]:
    """The decoded frames of ``streams`` with their stream's index; a packet that does not decode
    (a damaged spot) is skipped."""
    for packet in container.demux(streams):
        try:
            frames = packet.decode()
        except av.InvalidDataError:
            continue
        for frame in frames:
            yield packet.stream.index, frame
