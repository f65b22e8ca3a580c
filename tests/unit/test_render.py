"""Tests for hatchery.providers.render, the procedural renderer of the ``local`` provider.

Everything is in memory: PNGs are read back with Pillow, MP4s are demuxed and decoded with
PyAV. Renders are deterministic, so every pixel check below is reproducible, not flaky.
"""

from __future__ import annotations

import io
import struct
import zlib

import av
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from hatchery.providers.render import (
    ReferenceImageError,
    decode_reference,
    image_size,
    render_mp4,
    render_png,
    video_size,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LONG_PROMPT = (
    "A lighthouse on a basalt cliff at dusk, oil painting, dramatic clouds, crashing waves, "
    "seagulls, warm light spilling from the lantern room, long exposure, 35mm film grain, "
    "highly detailed, trending everywhere, and then some more words to overflow the band"
)

ImageArray = npt.NDArray[np.uint8]


def pixels(png: bytes) -> ImageArray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size but carries (almost) no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return PNG_MAGIC + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def open_mp4(data: bytes) -> av.container.InputContainer:
    return av.open(io.BytesIO(data), mode="r")


def seconds(container: av.container.InputContainer) -> float:
    assert container.duration is not None
    return container.duration / 1e6


def top_level_atoms(data: bytes) -> list[bytes]:
    kinds, position = [], 0
    while position + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, position)
        assert size >= 8, "this renderer never writes 64-bit or open-ended atoms"
        kinds.append(kind)
        position += size
    assert position == len(data)
    return kinds


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("aspect", "resolution", "expected"),
    [
        ("16:9", "1k", (1024, 576)),
        ("16:9", "2k", (2048, 1152)),
        ("16:9", "4k", (4096, 2304)),
        ("9:16", "1k", (576, 1024)),
        ("9:16", "2k", (1152, 2048)),
        ("9:16", "4k", (2304, 4096)),
    ],
)
def test_image_size(aspect: str, resolution: str, expected: tuple[int, int]) -> None:
    assert image_size(aspect, resolution) == expected


@pytest.mark.parametrize(
    ("aspect", "resolution", "expected"),
    [
        ("16:9", "1k", (1280, 720)),
        ("16:9", "2k", (1920, 1080)),
        ("16:9", "4k", (3840, 2160)),
        ("9:16", "1k", (720, 1280)),
        ("9:16", "2k", (1080, 1920)),
        ("9:16", "4k", (2160, 3840)),
    ],
)
def test_video_size(aspect: str, resolution: str, expected: tuple[int, int]) -> None:
    width, height = video_size(aspect, resolution)
    assert (width, height) == expected
    assert width % 2 == 0 and height % 2 == 0


@pytest.mark.parametrize("size_of", [image_size, video_size])
@pytest.mark.parametrize(
    ("aspect", "resolution"),
    [("4:3", "1k"), ("16:9", "8k"), ("", "1k"), ("16:9", ""), ("16:9", "1K"), ("1k", "16:9")],
)
def test_sizes_reject_unknown_values(size_of: object, aspect: str, resolution: str) -> None:
    assert callable(size_of)
    with pytest.raises(ValueError):
        size_of(aspect, resolution)


# ---------------------------------------------------------------------------- PNG


@pytest.mark.parametrize("resolution", ["1k", "2k", "4k"])
@pytest.mark.parametrize("aspect", ["16:9", "9:16"])
def test_png_is_real_png_of_exact_size(aspect: str, resolution: str) -> None:
    width, height = image_size(aspect, resolution)
    png = render_png("a red fox in the snow", 0, width, height)
    assert png.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == (width, height)
        image.load()  # the whole stream decodes


def test_png_is_deterministic() -> None:
    reference = Image.new("RGB", (40, 30), (10, 200, 30))
    first = render_png("same prompt", 2, 1024, 576, [reference])
    second = render_png("same prompt", 2, 1024, 576, [reference.copy()])
    assert first == second


def test_different_prompts_give_different_pictures() -> None:
    one = pixels(render_png("a castle", 0, 1024, 576)).astype(np.int16)
    other = pixels(render_png("a spaceship", 0, 1024, 576)).astype(np.int16)
    background = slice(0, 576 // 2)  # above the text band: palette and shapes differ
    assert np.abs(one[background] - other[background]).mean() > 10


def test_different_index_gives_different_pictures() -> None:
    first = pixels(render_png("a castle", 0, 1024, 576)).astype(np.int16)
    second = pixels(render_png("a castle", 1, 1024, 576)).astype(np.int16)
    background = slice(0, 576 // 2)
    assert np.abs(first[background] - second[background]).mean() > 10


@pytest.mark.parametrize("prompt", ["a castle", "sunset", LONG_PROMPT])
def test_text_band_is_dark_and_carries_the_prompt(prompt: str) -> None:
    image = pixels(render_png(prompt, 0, 1024, 576)).astype(np.int16)
    bottom = image[-50:]  # always inside the band, even for an empty prompt
    assert bottom.mean() < 0.7 * image[:288].mean()  # the band darkens the background
    white = (image[-200:] >= 240).all(axis=2)  # white text on the band
    assert white.sum() > 200


def test_empty_prompt_draws_no_white_text() -> None:
    image = pixels(render_png("", 0, 1024, 576))
    # the band and the grey caption are there, but no white prompt text
    assert image[-50:].mean() < 0.7 * image[:288].mean()
    assert not (image[-50:] >= 240).all(axis=2).any()


def test_long_prompt_is_truncated_to_a_few_lines() -> None:
    image = pixels(render_png(LONG_PROMPT * 20, 0, 1024, 576))
    white_rows = np.flatnonzero(np.any(np.all(image >= 240, axis=2), axis=1))
    assert white_rows.size
    # at most a few lines of ~32 px text at the bottom; the upper half stays free
    assert white_rows.min() > 576 // 2


def test_odd_and_tiny_sizes_are_rendered_exactly() -> None:
    for width, height in [(1, 1), (7, 3), (333, 97)]:
        with Image.open(io.BytesIO(render_png("tiny", 0, width, height))) as image:
            assert image.size == (width, height)


def test_png_rejects_non_positive_sizes() -> None:
    with pytest.raises(ValueError):
        render_png("x", 0, 0, 10)


def test_references_change_the_picture_and_appear_as_thumbnails() -> None:
    red = Image.new("RGB", (64, 64), (255, 0, 0))
    plain = pixels(render_png("a castle", 0, 1024, 576))
    with_ref = pixels(render_png("a castle", 0, 1024, 576, [red]))
    assert not np.array_equal(plain, with_ref)
    corner = with_ref[:200, :200]
    assert (corner == (255, 0, 0)).all(axis=2).sum() > 5000  # the thumbnail, top-left
    # the first reference also tints the background, far from the thumbnail
    away = (slice(200, 380), slice(300, None), 0)
    assert with_ref[away].astype(np.int16).mean() > plain[away].astype(np.int16).mean() + 10


def test_several_references_each_get_a_thumbnail() -> None:
    colours = [(255, 0, 0), (0, 0, 255), (0, 255, 0)]
    refs = [Image.new("RGB", (50, 80), colour) for colour in colours]
    image = pixels(render_png("a castle", 0, 1024, 576, refs))
    top = image[:200]
    for colour in colours:
        assert (top == colour).all(axis=2).sum() > 2000


# ---------------------------------------------------------------------- references


def test_decode_reference_returns_rgb() -> None:
    rgba = Image.new("RGBA", (30, 20), (0, 0, 255, 128))
    image = decode_reference(png_bytes(rgba))
    assert image.mode == "RGB"
    assert image.size == (30, 20)


def test_decode_reference_applies_exif_orientation() -> None:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 10), (200, 100, 0)).save(out, format="JPEG", exif=exif)
    assert decode_reference(out.getvalue()).size == (10, 40)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"definitely not an image",
        PNG_MAGIC + b"\x00" * 40,
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    ],
)
def test_decode_reference_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ReferenceImageError, match="not an image"):
        decode_reference(data)


def test_decode_reference_rejects_truncated_image() -> None:
    data = png_bytes(Image.effect_noise((256, 256), 64).convert("RGB"))
    with pytest.raises(ReferenceImageError):
        decode_reference(data[: len(data) // 2])


@pytest.mark.parametrize("dims", [(7000, 7000), (10_000, 10_000), (30_000, 30_000)])
def test_decode_reference_refuses_decompression_bombs(dims: tuple[int, int]) -> None:
    with pytest.raises(ReferenceImageError, match="too large"):
        decode_reference(png_header_only(*dims))


def test_reference_image_error_is_a_value_error() -> None:
    assert issubclass(ReferenceImageError, ValueError)


# ---------------------------------------------------------------------------- MP4


@pytest.mark.parametrize("duration", [1, 3])
def test_mp4_is_h264_with_exact_frames_and_duration(duration: int) -> None:
    width, height = video_size("16:9", "1k")
    data = render_mp4("waves rolling in", duration, width, height)
    assert top_level_atoms(data).index(b"moov") < top_level_atoms(data).index(b"mdat")
    with open_mp4(data) as container:
        assert container.format.name.split(",")[0] == "mov"
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (width, height)
        assert stream.average_rate == 24
        assert seconds(container) == pytest.approx(duration, abs=1e-3)
        frames = list(container.decode(video=0))
    assert len(frames) == duration * 24
    assert (frames[0].width, frames[0].height) == (width, height)
    first, last = frames[0].to_ndarray(format="rgb24"), frames[-1].to_ndarray(format="rgb24")
    assert np.abs(first.astype(np.int16) - last.astype(np.int16)).mean() > 1  # it moves


def test_mp4_portrait_with_reference_and_custom_fps() -> None:
    width, height = video_size("9:16", "1k")
    red = Image.new("RGB", (64, 64), (255, 0, 0))
    data = render_mp4("a tall tower", 1, width, height, [red], fps=12)
    with open_mp4(data) as container:
        assert seconds(container) == pytest.approx(1, abs=1e-3)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 12
    assert frames[0].shape == (height, width, 3)
    corner = frames[0][:200, :200].astype(np.int16)
    reddish = (corner[..., 0] > 200) & (corner[..., 1] < 60) & (corner[..., 2] < 60)
    assert reddish.sum() > 3000  # the reference thumbnail survives encoding


def test_mp4_shows_the_prompt_band() -> None:
    data = render_mp4("white words on a dark band", 1, 1280, 720)
    with open_mp4(data) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.int16)
    assert frame[-60:].mean() < 0.7 * frame[:360].mean()
    assert (frame[-200:] >= 225).all(axis=2).sum() > 200


@pytest.mark.parametrize(
    ("duration", "width", "height", "fps"),
    [(1, 1281, 720, 24), (1, 1280, 721, 24), (0, 1280, 720, 24), (1, 1280, 720, 0)],
)
def test_mp4_rejects_bad_arguments(duration: int, width: int, height: int, fps: int) -> None:
    with pytest.raises(ValueError):
        render_mp4("x", duration, width, height, fps=fps)
