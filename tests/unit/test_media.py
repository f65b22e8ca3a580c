"""hatchery.media: what bytes are (from the bytes, never the name) and the renditions made of them.
Every input is made here, tiny, so the whole module runs in a few seconds."""

from __future__ import annotations

import dataclasses
import math
import os
import random
import wave
import zipfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from hatchery import media
from hatchery.media import renditions

# --- inputs -----------------------------------------------------------------------------------


def _picture(width: int, height: int, index: int, count: int) -> av.VideoFrame:
    """A frame with a red bar growing from the left edge (so its orientation can be read)."""
    pixels = np.full((height, width, 3), 16, np.uint8)
    pixels[:, : max(1, (index + 1) * width // count)] = (200, 40, 40)
    return av.VideoFrame.from_ndarray(pixels, format="rgb24")


def _write_video(
    path: Path,
    *,
    size: tuple[int, int] = (320, 240),
    seconds: float = 2,
    fps: int = 24,
    audio: bool = True,
    container: str = "mp4",
    codecs: tuple[str, str] = ("libx264", "aac"),
    rotation: int | None = None,
    faststart: bool = True,
) -> Path:
    options = {"movflags": "faststart"} if faststart and container == "mp4" else {}
    with av.open(str(path), "w", format=container, options=options) as output:
        video = output.add_stream(codecs[0], rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        if rotation is not None:
            video.set_display_rotation(rotation)
        tone = _tone_stream(output, codecs[1], 48000, 2) if audio else None
        count = round(seconds * fps)
        for index in range(count):
            frame = _picture(*size, index, count)
            frame.pts = index
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        if tone is not None:
            _write_tone(output, tone, seconds)
    return path


def _tone_stream(
    output: av.container.OutputContainer, codec: str, rate: int, channels: int
) -> av.AudioStream:
    stream = output.add_stream(codec, rate=rate)
    stream.layout = "mono" if channels == 1 else "stereo"
    return stream


def _write_tone(
    output: av.container.OutputContainer, stream: av.AudioStream, seconds: float
) -> None:
    rate, channels = stream.sample_rate, stream.codec_context.layout.nb_channels
    wanted = stream.codec_context.codec.audio_formats[0].name
    resampler = av.AudioResampler(format=wanted, layout=stream.layout, rate=rate)
    step = stream.codec_context.frame_size or 1152
    time = np.arange(round(rate * seconds)) / rate
    tone = (0.3 * np.sin(2 * math.pi * 440 * time)).astype(np.float32)
    for start in range(0, len(tone), step):
        chunk = np.ascontiguousarray(np.stack([tone[start : start + step]] * channels))
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=stream.layout)
        frame.sample_rate, frame.pts = rate, start
        for ready in resampler.resample(frame):
            output.mux(stream.encode(ready))
    output.mux(stream.encode(None))


def _write_audio(
    path: Path, container: str, codec: str, rate: int, channels: int, seconds: float
) -> Path:
    with av.open(str(path), "w", format=container) as output:
        _write_tone(output, _tone_stream(output, codec, rate, channels), seconds)
    return path


def _write_wav(path: Path, rate: int = 22050, seconds: float = 2) -> Path:
    time = np.arange(round(rate * seconds)) / rate
    samples = (10000 * np.sin(2 * math.pi * 440 * time)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def _write_vfr_webm(path: Path) -> Path:
    """VP9 with odd dimensions and frames 90 ms and 20 ms apart, no audio."""
    with av.open(str(path), "w", format="webm") as output:
        video = output.add_stream("libvpx-vp9", rate=30)
        video.width, video.height, video.pix_fmt = 321, 241, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for index in range(30):
            frame = _picture(321, 241, index, 30)
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            output.mux(video.encode(frame))
            pts += 90 if index % 2 == 0 else 20
        output.mux(video.encode(None))
    return path


def _image(path: Path, image: Image.Image, kind: str, **options: object) -> Path:
    image.save(path, kind, **options)
    return path


def _transparent_png(path: Path) -> Path:
    image = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    image.paste((30, 120, 200, 255), (50, 50, 250, 150))
    return _image(path, image, "PNG")


def _rotated_jpeg(path: Path) -> Path:
    """64x32 pixels with EXIF orientation 6: shown 32 wide, 64 high."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _image(path, Image.new("RGB", (64, 32), (200, 100, 0)), "JPEG", exif=exif)


def _gif(path: Path) -> Path:
    frames = [Image.new("P", (40, 30), color) for color in (1, 2)]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "hello " * 500)
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(source: Path, path: Path, fraction: float) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


MAKERS: dict[str, Callable[[Path, dict[str, Path]], Path]] = {
    # Every file is named without an extension, as the server stores uploads.
    "png": lambda p, _: _transparent_png(p),
    "jpeg": lambda p, _: _image(p, Image.new("RGB", (640, 480), (10, 200, 30)), "JPEG"),
    "jpeg_rotated": lambda p, _: _rotated_jpeg(p),
    "webp": lambda p, _: _image(p, Image.new("RGB", (100, 50), (1, 2, 3)), "WEBP"),
    "gif": lambda p, _: _gif(p),
    "svg": lambda p, _: _bytes(
        p,
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="120" '
        b'height="80"><rect width="120" height="80"/></svg>',
    ),
    "svg_viewbox": lambda p, _: _bytes(
        p, b'<svg viewBox="0 0 300 150" xmlns="http://www.w3.org/2000/svg"></svg>'
    ),
    "mp4": lambda p, _: _write_video(p),
    "mp4_silent": lambda p, _: _write_video(p, audio=False),
    "mp4_rotated": lambda p, _: _write_video(p, size=(64, 48), audio=False, rotation=90),
    "mp4_tall": lambda p, _: _write_video(p, size=(1280, 1440), seconds=0.25, audio=False),
    "mp4_long": lambda p, _: _write_video(p, size=(64, 48), seconds=9, fps=10),
    "mp4_index_last": lambda p, _: _write_video(p, size=(64, 48), faststart=False),
    "webm": lambda p, _: _write_video(
        p, size=(64, 48), seconds=1, container="webm", codecs=("libvpx-vp9", "libopus")
    ),
    "webm_vp8": lambda p, _: _write_video(
        p, size=(64, 48), seconds=1, container="webm", codecs=("libvpx", "libopus"), audio=False
    ),
    "webm_vfr": lambda p, _: _write_vfr_webm(p),
    "mp3": lambda p, _: _write_audio(p, "mp3", "libmp3lame", 44100, 1, 3),
    "m4a": lambda p, _: _write_audio(p, "ipod", "aac", 44100, 2, 2),
    "ogg": lambda p, _: _write_audio(p, "ogg", "libopus", 48000, 2, 2),
    "flac": lambda p, _: _write_audio(p, "flac", "flac", 16000, 1, 2),
    "wav": lambda p, _: _write_wav(p),
    "wav_long": lambda p, _: _write_wav(p, rate=8000, seconds=9),
    # What is not media.
    "empty": lambda p, _: _bytes(p, b""),
    "random": lambda p, _: _bytes(p, random.Random(7).randbytes(20_000)),
    "html": lambda p, _: _bytes(
        p, b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1><svg></svg></body></html>\n"
    ),
    "zip": lambda p, _: _zip(p),
    "png_truncated": lambda p, made: _truncated(made["png"], p, 0.6),
    "mp4_truncated": lambda p, made: _truncated(made["mp4"], p, 0.6),
    "mp4_index_last_truncated": lambda p, made: _truncated(made["mp4_index_last"], p, 0.6),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    made: dict[str, Path] = {}
    for name, make in MAKERS.items():
        made[name] = make(folder / name, made)
    return made


@pytest.fixture
def out(tmp_path: Path) -> Callable[[str], Path]:
    def folder(name: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        return path

    return folder


# --- inspect ----------------------------------------------------------------------------------

EXPECTED = {
    # name: (kind, content type, extension, width, height, duration, has_audio, has_video)
    "png": ("IMAGE", "image/png", "png", 300, 200, None, False, True),
    "jpeg": ("IMAGE", "image/jpeg", "jpg", 640, 480, None, False, True),
    "jpeg_rotated": ("IMAGE", "image/jpeg", "jpg", 32, 64, None, False, True),
    "webp": ("IMAGE", "image/webp", "webp", 100, 50, None, False, True),
    "gif": ("IMAGE", "image/gif", "gif", 40, 30, None, False, True),
    "svg": ("IMAGE", "image/svg+xml", "svg", 120, 80, None, False, True),
    "svg_viewbox": ("IMAGE", "image/svg+xml", "svg", 300, 150, None, False, True),
    "mp4": ("VIDEO", "video/mp4", "mp4", 320, 240, 2.0, True, True),
    "mp4_silent": ("VIDEO", "video/mp4", "mp4", 320, 240, 2.0, False, True),
    "mp4_rotated": ("VIDEO", "video/mp4", "mp4", 48, 64, 2.0, False, True),
    "webm": ("VIDEO", "video/webm", "webm", 64, 48, 1.0, True, True),
    "webm_vp8": ("VIDEO", "video/webm", "webm", 64, 48, 1.0, False, True),
    "webm_vfr": ("VIDEO", "video/webm", "webm", 321, 241, 1.66, False, True),
    "mp3": ("AUDIO", "audio/mpeg", "mp3", None, None, 3.0, True, False),
    "m4a": ("AUDIO", "audio/mp4", "m4a", None, None, 2.0, True, False),
    "ogg": ("AUDIO", "audio/ogg", "ogg", None, None, 2.0, True, False),
    "flac": ("AUDIO", "audio/flac", "flac", None, None, 2.0, True, False),
    "wav": ("AUDIO", "audio/wav", "wav", None, None, 2.0, True, False),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_inspect_reads_the_bytes(files: dict[str, Path], name: str) -> None:
    info = media.inspect(files[name])
    kind, content_type, extension, width, height, duration, has_audio, has_video = EXPECTED[name]
    assert (info.kind, info.content_type, info.extension) == (kind, content_type, extension)
    assert (info.width, info.height) == (width, height)
    assert (info.has_audio, info.has_video) == (has_audio, has_video)
    if duration is None:
        assert info.duration_seconds is None
    else:
        assert info.duration_seconds == pytest.approx(duration, abs=0.1)


@pytest.mark.parametrize(
    "name",
    [
        "empty",
        "random",
        "html",
        "zip",
        "png_truncated",
        "mp4_truncated",
        "mp4_index_last_truncated",
    ],
)
def test_what_is_not_media_is_refused(files: dict[str, Path], name: str) -> None:
    with pytest.raises(media.NotMedia, match="not an image, video or audio file") as caught:
        media.inspect(files[name])
    assert "PNG, JPEG" in str(caught.value)  # it says what the server reads


def test_names_do_not_matter(files: dict[str, Path], tmp_path: Path) -> None:
    png_named_mp4 = tmp_path / "x.mp4"
    png_named_mp4.write_bytes(files["png"].read_bytes())
    mp4_named_png = tmp_path / "x.png"
    mp4_named_png.write_bytes(files["mp4"].read_bytes())
    assert media.inspect(png_named_mp4).content_type == "image/png"
    assert media.inspect(mp4_named_png).kind == "VIDEO"


@pytest.mark.parametrize("limit", [4_000, 2_000])  # a warning (over the limit), an error (2x)
def test_decompression_bombs_are_refused(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, Path], limit: int
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(media.NotMedia, match="too large"):
        media.inspect(files["webp"])  # 100x50 = 5,000 pixels


# --- thumbnails -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("png", (256, 171)),
        ("jpeg", (256, 192)),
        ("jpeg_rotated", (32, 64)),  # upright, never enlarged
        ("gif", (40, 30)),
        ("mp4", (256, 192)),
        ("mp4_rotated", (48, 64)),
        ("mp4_tall", (228, 256)),
        ("webm_vfr", (256, 192)),
    ],
)
def test_thumbnails_are_jpegs_that_fit_in_256(
    files: dict[str, Path], out: Callable[[str], Path], name: str, size: tuple[int, int]
) -> None:
    info = media.inspect(files[name])
    made = media.thumbnail(files[name], info, out("thumbnail"))
    assert made is not None
    assert (made.content_type, (made.width, made.height)) == ("image/jpeg", size)
    assert made.size == made.path.stat().st_size
    with Image.open(made.path) as image:
        assert (image.format, image.size) == ("JPEG", size)


def test_a_rotated_video_is_shown_upright(
    files: dict[str, Path], out: Callable[[str], Path]
) -> None:
    """Display rotation 90 (counter-clockwise): the bar growing from the left grows from the
    bottom once upright; the thumbnail, about 1 s in, has it over the lower half."""
    made = media.thumbnail(files["mp4_rotated"], media.inspect(files["mp4_rotated"]), out("t"))
    assert made is not None
    with Image.open(made.path) as image:
        top, bottom = image.getpixel((24, 4)), image.getpixel((24, 60))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] < 60 < 150 < bottom[0]


@pytest.mark.parametrize("name", ["mp3", "wav", "svg"])
def test_audio_and_svg_have_no_thumbnail(
    files: dict[str, Path], out: Callable[[str], Path], name: str
) -> None:
    assert media.thumbnail(files[name], media.inspect(files[name]), out("t")) is None


# --- previews ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "size"),
    [
        ("png", "image/webp", (300, 200)),  # transparency kept
        ("jpeg", "image/jpeg", (640, 480)),
        ("jpeg_rotated", "image/jpeg", (32, 64)),
        ("webp", "image/jpeg", (100, 50)),
        ("gif", "image/jpeg", (40, 30)),
    ],
)
def test_image_previews(
    files: dict[str, Path],
    out: Callable[[str], Path],
    name: str,
    content_type: str,
    size: tuple[int, int],
) -> None:
    made = media.preview(files[name], media.inspect(files[name]), out("p"))
    assert made is not None
    assert (made.content_type, (made.width, made.height)) == (content_type, size)
    again = media.inspect(made.path)
    assert (again.content_type, again.width, again.height) == (content_type, *size)
    if content_type == "image/webp":
        with Image.open(made.path) as image:
            assert image.mode == "RGBA" and image.getpixel((0, 0)) == (0, 0, 0, 0)


def test_a_large_image_preview_fits_in_1280(tmp_path: Path, out: Callable[[str], Path]) -> None:
    source = _image(tmp_path / "big", Image.new("RGB", (2000, 1000), (9, 9, 9)), "PNG")
    made = media.preview(source, media.inspect(source), out("p"))
    assert made is not None and (made.width, made.height) == (1280, 640)


def test_svg_has_no_preview(files: dict[str, Path], out: Callable[[str], Path]) -> None:
    assert media.preview(files["svg"], media.inspect(files["svg"]), out("p")) is None


@pytest.mark.parametrize(
    ("name", "size", "has_audio"),
    [
        ("mp4", (320, 240), True),
        ("mp4_silent", (320, 240), False),
        ("mp4_rotated", (48, 64), False),
        ("mp4_tall", (640, 720), False),  # at most 720 high
        ("webm", (64, 48), True),
        ("webm_vfr", (320, 240), False),  # odd dimensions made even
    ],
)
def test_video_previews_are_mp4s_a_browser_plays(
    files: dict[str, Path],
    out: Callable[[str], Path],
    name: str,
    size: tuple[int, int],
    has_audio: bool,
) -> None:
    info = media.inspect(files[name])
    made = media.preview(files[name], info, out("p"))
    assert made is not None
    assert (made.content_type, (made.width, made.height)) == ("video/mp4", size)
    again = media.inspect(made.path)
    assert (again.kind, again.content_type, (again.width, again.height)) == (
        "VIDEO",
        "video/mp4",
        size,
    )
    assert again.has_audio is has_audio
    assert again.duration_seconds == pytest.approx(info.duration_seconds, abs=0.15)
    data = made.path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: playable while it downloads
    with av.open(str(made.path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        if has_audio:
            assert container.streams.audio[0].codec_context.name == "aac"


def test_variable_frame_rates_stay_variable(
    files: dict[str, Path], out: Callable[[str], Path]
) -> None:
    made = media.preview(files["webm_vfr"], media.inspect(files["webm_vfr"]), out("p"))
    assert made is not None
    with av.open(str(made.path)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert len(times) == 30
    assert np.diff(times)[:4] == pytest.approx([0.09, 0.02, 0.09, 0.02], abs=0.002)


@pytest.mark.parametrize("name", ["mp3", "wav", "ogg", "flac", "m4a"])
def test_audio_previews_are_aac(
    files: dict[str, Path], out: Callable[[str], Path], name: str
) -> None:
    info = media.inspect(files[name])
    made = media.preview(files[name], info, out("p"))
    assert made is not None
    assert (made.content_type, made.width, made.height) == ("audio/mp4", None, None)
    again = media.inspect(made.path)
    assert (again.kind, again.content_type, again.has_video) == ("AUDIO", "audio/mp4", False)
    assert again.duration_seconds == pytest.approx(info.duration_seconds, abs=0.1)
    with av.open(str(made.path)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert audio.sample_rate in (44100, 48000)


def test_long_media_is_refused(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, Path], out: Callable[[str], Path]
) -> None:
    monkeypatch.setattr(renditions, "MAX_SECONDS", 1)
    info = media.inspect(files["mp4"])
    with pytest.raises(media.TooLong, match="at most 1 s"):
        media.preview(files["mp4"], info, out("p"))
    with pytest.raises(media.TooLong):
        media.hls(files["mp4"], info, out("h"))
    long = media.inspect(files["mp4_long"])  # 9 s: its length unknown, it is caught mid-way
    unknown = dataclasses.replace(long, duration_seconds=None)
    with pytest.raises(media.TooLong):
        media.preview(files["mp4_long"], unknown, out("q"))


# --- HLS --------------------------------------------------------------------------------------


def _segments(playlist: Path) -> list[tuple[float, str]]:
    lines = playlist.read_text().splitlines()
    return [
        (float(line.split(":", 1)[1].rstrip(",")), lines[number + 1])
        for number, line in enumerate(lines)
        if line.startswith("#EXTINF:")
    ]


@pytest.mark.parametrize(
    ("name", "segments", "has_video"),
    [
        ("mp4_long", 3, True),
        ("wav_long", 3, False),
        ("mp4_rotated", 1, True),
        ("webm_vfr", 1, True),
    ],
)
def test_hls_is_a_vod_playlist_of_relative_segments(
    files: dict[str, Path], out: Callable[[str], Path], name: str, segments: int, has_video: bool
) -> None:
    info = media.inspect(files[name])
    folder = out("hls")
    playlist = media.hls(files[name], info, folder)
    assert playlist == folder / "index.m3u8"
    text = playlist.read_text()
    assert text.startswith("#EXTM3U\n")
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    listed = _segments(playlist)
    assert len(listed) == segments
    assert sorted(os.listdir(folder)) == sorted(["index.m3u8", *(name for _, name in listed)])
    for seconds, segment in listed:
        assert "/" not in segment and segment.endswith(".ts")
        assert seconds <= 4.6
        with av.open(str(folder / segment)) as container:
            assert bool(container.streams.video) is has_video
            assert container.streams.audio or has_video
            assert next(container.decode(container.streams[0])) is not None
    assert sum(seconds for seconds, _ in listed) == pytest.approx(info.duration_seconds, abs=0.15)


def test_hls_video_is_h264_at_most_720_high(
    files: dict[str, Path], out: Callable[[str], Path]
) -> None:
    folder = out("hls")
    playlist = media.hls(files["mp4_tall"], media.inspect(files["mp4_tall"]), folder)
    with av.open(str(folder / _segments(playlist)[0][1])) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 640, 720)


def test_hls_is_for_video_and_audio(files: dict[str, Path], out: Callable[[str], Path]) -> None:
    with pytest.raises(ValueError, match="video or an audio"):
        media.hls(files["png"], media.inspect(files["png"]), out("h"))
