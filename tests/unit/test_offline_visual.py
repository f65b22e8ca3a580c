"""Tests for the local provider's offline image and video tools (hatchery.offline).

Every check decodes the output: PNGs with Pillow, SVGs with xml.etree, videos with PyAV
(WebM alpha with the ``libvpx-vp9`` decoder, which keeps the alpha plane). Inputs are
synthetic pictures and clips built here, so the expected answers are known exactly.
"""

from __future__ import annotations

import io
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from fractions import Fraction

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from hatchery.offline.cutout import remove_image_background, remove_video_background
from hatchery.offline.frames import (
    MADE_BY,
    Audio,
    decode_audio,
    decode_image,
    encode_png,
    fit_size,
    mux_audio,
    read_video,
    write_mp4,
    write_video,
    write_webm_alpha,
)
from hatchery.offline.motion import animate_images, render_clip, transform_video
from hatchery.offline.reference import render_image, transform_images
from hatchery.offline.upscale import upscale_image, upscale_video
from hatchery.offline.vector import vectorize
from hatchery.offline.watermark import mark
from hatchery.providers.base import Artifact

Pixels = npt.NDArray[np.uint8]

SVG_NS = "{http://www.w3.org/2000/svg}"
W, H, FPS, FRAMES = 320, 180, 24, 48  # the sample clip: 2 s


# ------------------------------------------------------------------------------- inputs


def gradient(width: int, height: int) -> Pixels:
    ys, xs = np.mgrid[0:height, 0:width]
    planes = (40 + 100 * xs / width, 60 + 80 * ys / height, 160 - 60 * xs / width)
    return np.dstack(planes).astype(np.uint8)


def disc_picture(width: int = 1024, height: int = 1024, plain: bool = False) -> Pixels:
    """A red disc of radius a quarter of the short side, centred, on a gradient or grey."""
    picture = np.full((height, width, 3), 205, np.uint8) if plain else gradient(width, height)
    radius = min(width, height) // 4
    cv2.circle(picture, (width // 2, height // 2), radius, (230, 60, 40), -1, cv2.LINE_AA)
    return picture


def textured(width: int, height: int, seed: int = 0) -> Pixels:
    """Busy content (blurred noise plus shapes) for pictures whose crops must differ."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), 6)
    picture: Pixels = np.clip((noise - noise.min()) / np.ptp(noise) * 255, 0, 255).astype(np.uint8)
    for _ in range(6):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.circle(picture, centre, int(rng.integers(10, width // 5)), colour, -1)
    return picture


def png(picture: Pixels) -> bytes:
    return encode_png(picture)


def decode_png(data: bytes) -> Pixels:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert(image.mode))


def tone(seconds: float, frequency: float = 440.0) -> Audio:
    t = np.arange(round(seconds * 48_000)) / 48_000
    wave = (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return Audio(np.stack([wave, wave]))


def moving_disc_frames(count: int = FRAMES) -> list[Pixels]:
    frames = []
    for number in range(count):
        frame = gradient(W, H)
        cv2.circle(frame, (100 + 2 * number, H // 2), 45, (230, 60, 40), -1)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def clip_with_sound() -> bytes:
    return write_mp4(moving_disc_frames(), FPS, (W, H), audio=tone(2.0))


@pytest.fixture(scope="module")
def silent_clip() -> bytes:
    return write_mp4(moving_disc_frames(), FPS, (W, H))


def streams(data: bytes) -> list[str]:
    with av.open(io.BytesIO(data)) as container:
        return [stream.type for stream in container.streams]


def video_frames(data: bytes) -> list[Pixels]:
    clip = read_video(data, max_seconds=120, max_pixels=10**8)
    return list(clip.frames())


def alpha_frames(data: bytes) -> Iterator[tuple[str, Pixels]]:
    """(pixel format, RGBA) of each frame, decoded with the libvpx VP9 decoder."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        for packet in container.demux(stream):
            for frame in decoder.decode(packet):
                yield frame.format.name, np.asarray(frame.to_ndarray(format="rgba"), np.uint8)


def made_by_local(artifact: Artifact) -> bool:
    return artifact.description is not None and artifact.description.endswith(MADE_BY)


# -------------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("aspect", "long_side", "expected"),
    [
        ((16, 9), 1280, (1280, 720)),
        ((9, 16), 1024, (576, 1024)),
        ((1, 1), 1023, (1024, 1024)),
        ((3, 2), 1000, (1000, 666)),
        ((100, 1), 1000, (1000, 250)),  # clamped to 4:1
        ((1, 100), 800, (200, 800)),
    ],
)
def test_fit_size_is_even_and_keeps_the_ratio(
    aspect: tuple[int, int], long_side: int, expected: tuple[int, int]
) -> None:
    assert fit_size(*aspect, long_side) == expected


def test_fit_size_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        fit_size(0, 9, 1024)
    with pytest.raises(ValueError, match="long side"):
        fit_size(16, 9, 1)


# ------------------------------------------------------------------------------- decoding


def test_images_over_40_megapixels_are_refused_before_decoding() -> None:
    out = io.BytesIO()
    Image.new("1", (7000, 6000)).save(out, format="PNG")  # 42 MP, a few kilobytes
    with pytest.raises(ValueError, match="too large"):
        decode_image(out.getvalue())


def test_non_images_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="PNG, JPEG"):
        decode_image(b"not an image at all")


def test_read_video_refuses_non_video_too_long_and_too_large(clip_with_sound: bytes) -> None:
    with pytest.raises(ValueError, match="MP4, WebM or MOV"):
        read_video(b"\x00" * 4096, max_seconds=60, max_pixels=10**7)
    with pytest.raises(ValueError, match="MP4, WebM or MOV"):
        read_video(png(disc_picture(64, 64)), max_seconds=60, max_pixels=10**7)
    with pytest.raises(ValueError, match="longer than 1 s"):
        read_video(clip_with_sound, max_seconds=1, max_pixels=10**7)
    with pytest.raises(ValueError, match="320x180"):
        read_video(clip_with_sound, max_seconds=60, max_pixels=320 * 179)


def test_read_video_reports_size_rate_and_sound(clip_with_sound: bytes) -> None:
    clip = read_video(clip_with_sound, max_seconds=60, max_pixels=10**7)
    assert (clip.width, clip.height, clip.fps) == (W, H, Fraction(FPS))
    assert clip.audio is not None and clip.audio.seconds == pytest.approx(2.0, abs=0.05)
    assert not clip.has_alpha
    frames = list(clip.frames())
    assert len(frames) == FRAMES and frames[0].shape == (H, W, 3)
    red, green, blue = frames[0][H // 2, 100]  # the disc's colour survives the round trip
    assert abs(int(red) - 230) < 8 and abs(int(green) - 60) < 8 and abs(int(blue) - 40) < 8


def test_mux_audio_adds_a_sound_track(silent_clip: bytes, clip_with_sound: bytes) -> None:
    assert streams(silent_clip) == ["video"]
    muxed = mux_audio(silent_clip, clip_with_sound)  # any file with sound will do
    assert sorted(streams(muxed)) == ["audio", "video"]
    assert decode_audio(muxed).seconds == pytest.approx(2.0, abs=0.05)
    assert len(video_frames(muxed)) == FRAMES


def test_mux_audio_pads_a_short_sound_to_the_video(silent_clip: bytes) -> None:
    muxed = mux_audio(silent_clip, tone(0.5))
    assert decode_audio(muxed).seconds == pytest.approx(2.0, abs=0.05)


def test_webm_alpha_round_trip_keeps_the_alpha_plane() -> None:
    frames = []
    for number in range(6):
        frame = np.zeros((64, 96, 4), np.uint8)
        frame[..., :3] = (200, 40, 40)
        frame[16:48, 24 + number : 72 + number, 3] = 255
        frames.append(frame)
    data = write_webm_alpha(frames, 12, (96, 64))
    decoded = list(alpha_frames(data))
    assert len(decoded) == 6
    assert {name for name, _ in decoded} == {"yuva420p"}
    rgba = decoded[0][1]
    assert rgba[32, 48, 3] > 240 and rgba[2, 2, 3] < 15


def test_mov_alpha_is_prores_4444() -> None:
    frames = [np.full((32, 32, 4), 120, np.uint8) for _ in range(3)]
    data = write_video(frames, 24, (32, 32), container="mov", alpha=True)
    clip = read_video(data, max_seconds=5, max_pixels=10**6)
    assert clip.has_alpha
    first = next(clip.frames(alpha=True))
    assert abs(int(first[0, 0, 3]) - 120) <= 2


# ------------------------------------------------------------------------------- cutout


@pytest.mark.parametrize("plain", [False, True], ids=["gradient", "plain"])
def test_cutout_makes_the_background_transparent_and_the_disc_opaque(plain: bool) -> None:
    result = remove_image_background(png(disc_picture(plain=plain)))
    assert (result.extension, result.width, result.height) == ("png", 1024, 1024)
    assert made_by_local(result) and "GrabCut" in (result.description or "")
    rgba = decode_png(result.data)
    assert rgba.shape == (1024, 1024, 4)
    alpha = rgba[..., 3]
    assert alpha[512, 512] == 255  # the disc's centre
    assert alpha[10, 10] == 0 and alpha[1013, 1013] == 0  # corners
    disc = np.hypot(*np.mgrid[-512:512, -512:512]) < 256
    inside, outside = alpha[disc], alpha[~disc]
    assert (inside > 250).mean() > 0.97
    assert (outside < 5).mean() > 0.97


def test_cutout_keeps_the_colours() -> None:
    picture = disc_picture(plain=True)
    rgba = decode_png(remove_image_background(png(picture)).data)
    assert np.array_equal(rgba[..., :3], picture)


def test_cutout_refuses_non_images() -> None:
    with pytest.raises(ValueError):
        remove_image_background(b"GIF89a broken")


@pytest.mark.slow
def test_video_cutout_is_webm_with_alpha_and_keeps_frames_and_rate(
    clip_with_sound: bytes,
) -> None:
    result = remove_video_background(clip_with_sound)
    assert (result.extension, result.width, result.height) == ("webm", W, H)
    assert result.seconds == pytest.approx(2.0)
    assert made_by_local(result)
    decoded = list(alpha_frames(result.data))
    assert len(decoded) == FRAMES
    assert {name for name, _ in decoded} == {"yuva420p"}
    clip = read_video(result.data, max_seconds=60, max_pixels=10**7)
    assert clip.fps == FPS and clip.has_alpha
    for number in (0, 20, 47):
        alpha = decoded[number][1][..., 3]
        assert alpha[H // 2, 100 + 2 * number] > 240  # the moving disc
        assert alpha[5, 5] < 15 and alpha[H - 5, W - 5] < 15


# ------------------------------------------------------------------------------- vector


def test_vectorize_gives_an_svg_with_paths() -> None:
    result = vectorize(png(disc_picture(400, 300)))
    assert (result.extension, result.width, result.height) == ("svg", 400, 300)
    assert made_by_local(result) and "vtracer" in (result.description or "")
    root = ET.fromstring(result.data)
    assert root.tag == f"{SVG_NS}svg"
    assert root.attrib["viewBox"] == "0 0 400 300"
    assert (root.attrib["width"], root.attrib["height"]) == ("400", "300")
    assert len(root.findall(f"{SVG_NS}path")) >= 2  # the background and the disc


def test_vectorize_downscales_large_inputs_but_keeps_their_size() -> None:
    result = vectorize(png(disc_picture(2000, 1000)))
    root = ET.fromstring(result.data)
    assert (root.attrib["width"], root.attrib["height"]) == ("2000", "1000")
    _, _, grid_w, grid_h = (float(v) for v in root.attrib["viewBox"].split())
    assert grid_w * grid_h <= 1_048_576 and grid_w / grid_h == pytest.approx(2.0, rel=0.01)
    assert "downscale" in (result.description or "")


# ------------------------------------------------------------------------------ upscale


def test_upscale_doubles_the_size() -> None:
    result = upscale_image(png(textured(300, 200)))
    assert (result.width, result.height) == (600, 400)
    assert decode_png(result.data).shape == (400, 600, 3)
    assert made_by_local(result) and "2\u00d7" in (result.description or "")


def test_upscale_reduces_the_factor_to_fit_the_cap() -> None:
    result = upscale_image(png(textured(300, 200)), factor=4, max_pixels=600 * 400 + 5)
    assert (result.width, result.height) == (600, 400)
    assert "reduced from 4\u00d7" in (result.description or "")
    same = upscale_image(png(textured(300, 200)), factor=2, max_pixels=300 * 200)
    assert (same.width, same.height) == (300, 200)
    with pytest.raises(ValueError, match="limit"):
        upscale_image(png(textured(300, 200)), max_pixels=300 * 199)
    with pytest.raises(ValueError, match="factor"):
        upscale_image(png(disc_picture(30, 20)), factor=0)


def test_upscale_keeps_alpha() -> None:
    rgba = np.zeros((50, 80, 4), np.uint8)
    cv2.circle(rgba, (40, 25), 15, (255, 0, 0, 255), -1)
    result = decode_png(upscale_image(png(rgba), factor=3).data)
    assert result.shape == (150, 240, 4)
    assert result[75, 120, 3] == 255 and result[0, 0, 3] == 0
    assert tuple(result[75, 120, :3]) == (255, 0, 0)


@pytest.mark.slow
def test_upscale_video_doubles_and_keeps_sound(clip_with_sound: bytes) -> None:
    result = upscale_video(clip_with_sound)
    assert (result.extension, result.width, result.height) == ("mp4", 2 * W, 2 * H)
    assert sorted(streams(result.data)) == ["audio", "video"]
    assert len(video_frames(result.data)) == FRAMES
    capped = upscale_video(clip_with_sound, factor=4, max_pixels=3 * W * 3 * H)
    assert (capped.width, capped.height) == (3 * W, 3 * H)


# ---------------------------------------------------------------------------- reference


@pytest.mark.parametrize("aspect", [(16, 9), (9, 16), (1, 1), (21, 9), (4, 5)])
def test_transform_images_has_the_asked_aspect_ratio(aspect: tuple[int, int]) -> None:
    result = transform_images("a poster", [png(textured(640, 480))], aspect=aspect, index=0)
    height, width = decode_png(result.data).shape[:2]
    assert (width, height) == (result.width, result.height)
    assert max(width, height) == 1024
    assert abs(width - height * aspect[0] / aspect[1]) <= 1.0 * max(1, aspect[0] / aspect[1])
    assert made_by_local(result)


def test_transform_images_varies_with_the_index_and_is_deterministic() -> None:
    references = [png(textured(640, 480, seed=1)), png(textured(500, 500, seed=2))]
    first = transform_images("a city at night", references, aspect=(16, 9), index=0)
    second = transform_images("a city at night", references, aspect=(16, 9), index=1)
    again = transform_images("a city at night", references, aspect=(16, 9), index=0)
    assert first.data == again.data
    difference = np.abs(
        decode_png(first.data).astype(np.int16) - decode_png(second.data).astype(np.int16)
    )
    assert difference.mean() > 10


def test_transform_images_smart_crop_keeps_the_subject() -> None:
    picture = np.full((400, 1200, 3), 200, np.uint8)
    cv2.circle(picture, (1000, 200), 120, (20, 20, 200), -1)  # far right of a wide picture
    result = transform_images("film photo", [png(picture)], aspect=(1, 1), index=0)
    pixels = decode_png(result.data)
    blue = (pixels[..., 2].astype(int) - pixels[..., 0]) > 60
    assert blue.mean() > 0.1  # a centre crop would have missed the disc


def test_transform_images_needs_an_image() -> None:
    with pytest.raises(ValueError, match="reference"):
        transform_images("x", [], aspect=(1, 1), index=0)


def test_render_image_fits_any_aspect() -> None:
    result = render_image("a lighthouse", aspect=(3, 1), index=0)
    assert (result.width, result.height) == (1024, 342)
    assert decode_png(result.data).shape[:2] == (342, 1024)
    assert made_by_local(result)


# ------------------------------------------------------------------------------- motion


@pytest.mark.slow
def test_animate_images_has_the_frame_count_and_moves() -> None:
    references = [png(textured(800, 600, seed=3)), png(textured(600, 800, seed=4))]
    result = animate_images(
        "a calm lake", references, aspect=(16, 9), seconds=3, index=0, long_side=640
    )
    assert (result.extension, result.width, result.height, result.seconds) == (
        "mp4",
        640,
        360,
        3.0,
    )
    assert "Ken Burns" in (result.description or "") and made_by_local(result)
    frames = video_frames(result.data)
    assert len(frames) == 3 * 24
    first_shot = [frame.astype(np.int16) for frame in frames[:20]]
    steps = [np.abs(b - a).mean() for a, b in itertools.pairwise(first_shot)]
    assert min(steps) > 0.2  # the camera never stands still
    assert np.abs(first_shot[-1] - first_shot[0]).mean() > 5


@pytest.mark.slow
def test_animate_a_single_image_pans_and_zooms() -> None:
    result = animate_images(
        "sunset",
        [png(textured(800, 800, seed=5))],
        aspect=(1, 1),
        seconds=1,
        index=2,
        long_side=256,
    )
    frames = [frame.astype(np.int16) for frame in video_frames(result.data)]
    assert len(frames) == 24
    assert np.abs(frames[-1] - frames[0]).mean() > 5


@pytest.mark.slow
def test_transform_video_keeps_its_sound_and_reframes(clip_with_sound: bytes) -> None:
    result = transform_video("a cartoon", clip_with_sound, aspect=(1, 1), index=0)
    assert (result.extension, result.width, result.height) == ("mp4", H, H)
    assert sorted(streams(result.data)) == ["audio", "video"]
    assert len(video_frames(result.data)) == FRAMES
    assert "sound kept" in (result.description or "") and made_by_local(result)


@pytest.mark.slow
def test_transform_video_adds_the_given_audio(silent_clip: bytes, clip_with_sound: bytes) -> None:
    plain = transform_video("oil painting", silent_clip, aspect=(16, 9), index=0)
    assert streams(plain.data) == ["video"]
    with_audio = transform_video(
        "oil painting", silent_clip, aspect=(16, 9), index=0, audio=clip_with_sound
    )
    assert sorted(streams(with_audio.data)) == ["audio", "video"]
    assert decode_audio(with_audio.data).seconds == pytest.approx(2.0, abs=0.05)


@pytest.mark.slow
def test_render_clip_has_the_size_and_the_given_audio(clip_with_sound: bytes) -> None:
    result = render_clip(
        "waves", aspect=(4, 3), seconds=1, index=0, long_side=320, audio=clip_with_sound
    )
    assert (result.width, result.height, result.seconds) == (320, 240, 1.0)
    assert sorted(streams(result.data)) == ["audio", "video"]
    assert len(video_frames(result.data)) == 24


# ---------------------------------------------------------------------------- watermark


def corner_difference(before: Pixels, after: Pixels) -> float:
    height, width = before.shape[:2]
    box = np.s_[height - height // 8 :, width - width // 4 :]
    return float(np.abs(before[box].astype(int) - after[box].astype(int)).mean())


@pytest.mark.parametrize(("extension", "kind"), [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP")])
def test_mark_puts_a_badge_in_the_corner(extension: str, kind: str) -> None:
    picture = np.full((600, 800, 3), (30, 120, 200), np.uint8)
    out = io.BytesIO()
    Image.fromarray(picture).save(out, format=kind)
    artifact = Artifact(out.getvalue(), extension, 800, 600, description="kept")
    marked = mark(artifact)
    assert (marked.extension, marked.width, marked.height) == (extension, 800, 600)
    assert marked.description == "kept"
    with Image.open(io.BytesIO(marked.data)) as image:
        assert image.format == kind
        after = np.asarray(image.convert("RGB"))
    assert corner_difference(picture, after) > 10
    assert np.abs(after[:100, :100].astype(int) - picture[:100, :100]).mean() < 2


def test_mark_keeps_transparency() -> None:
    rgba = np.zeros((300, 400, 4), np.uint8)
    marked = decode_png(mark(Artifact(png(rgba), "png", 400, 300)).data)
    assert marked.shape == (300, 400, 4)
    assert marked[0, 0, 3] == 0 and marked[..., 3].max() > 200


def test_mark_adds_text_to_svg() -> None:
    svg = vectorize(png(disc_picture(200, 100)))
    marked = mark(svg)
    root = ET.fromstring(marked.data)
    texts = root.findall(f".//{SVG_NS}text")
    assert [text.text for text in texts] == ["Hatchery"]
    assert marked.data.rstrip().endswith(b"</svg>")


def test_mark_leaves_audio_alone() -> None:
    sound = Artifact(b"ID3\x04\x00\x00\x00\x00\x00\x00 not really", "mp3", None, None, 2.0)
    assert mark(sound) is sound


@pytest.mark.slow
def test_mark_stamps_every_video_frame_and_keeps_the_sound(clip_with_sound: bytes) -> None:
    marked = mark(Artifact(clip_with_sound, "mp4", W, H, 2.0))
    assert sorted(streams(marked.data)) == ["audio", "video"]
    before, after = video_frames(clip_with_sound), video_frames(marked.data)
    assert len(after) == FRAMES
    assert corner_difference(before[10], after[10]) > 10


@pytest.mark.slow
def test_mark_keeps_webm_alpha() -> None:
    frames = [np.zeros((120, 160, 4), np.uint8) for _ in range(4)]
    data = write_webm_alpha(frames, 24, (160, 120))
    marked = mark(Artifact(data, "webm", 160, 120))
    decoded = list(alpha_frames(marked.data))
    assert len(decoded) == 4 and {name for name, _ in decoded} == {"yuva420p"}
    alpha = decoded[0][1][..., 3]
    assert alpha[5, 5] < 15 and alpha[100:, 100:].max() > 150  # badge opaque, rest clear
