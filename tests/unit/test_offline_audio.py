"""Tests for the offline audio makers of the ``local`` provider (hatchery.offline).

Speech (eSpeak NG), procedural sound effects and talking-head videos are decoded back with
PyAV and checked for what they should do: durations, loudness, pitch, mouth motion, streams.
eSpeak NG's output varies by a few samples from one call to the next, so speech is compared by
durations and levels with margins far above that jitter, never byte for byte.
"""

from __future__ import annotations

import io
import re
import threading
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
import pytest

from hatchery.offline import avatar, sound, speech, spelling
from hatchery.offline.audio import audio_seconds, decode_audio, encode_mp3

Samples = npt.NDArray[np.float32]

SENTENCE = "The quick brown fox jumps over the lazy dog near the old mill."


def rms(samples: Samples) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def ava() -> speech.Voice:
    return speech.default_voice("en-US")


def say(text: str, **options: object) -> tuple[Samples, int, float]:
    artifact = speech.speak(text, voice=options.pop("voice", ava()), **options)  # type: ignore[arg-type]
    assert artifact.extension == "mp3"
    assert artifact.width is None and artifact.height is None
    samples, rate = decode_audio(artifact.data)
    assert artifact.seconds == pytest.approx(samples.size / rate, abs=0.01)
    return samples, rate, samples.size / rate


def wav(samples: Samples, rate: int) -> bytes:
    """A 16-bit PCM WAV file of mono ``samples``."""
    out = io.BytesIO()
    with av.open(out, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1),
            format="s16",
            layout="mono",
        )
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def speech_like(seconds: float, rate: int = 16000) -> Samples:
    """A vowel-ish buzz (140 Hz harmonics) at a syllable rate of 4 per second."""
    t = np.arange(round(seconds * rate)) / rate
    buzz = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
    syllables = 0.5 - 0.5 * np.cos(2 * np.pi * 4 * t)
    return (0.25 * buzz * syllables).astype(np.float32)


def frequency_peak(samples: Samples, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def centroid(samples: Samples, rate: int) -> float:
    power = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    return float(np.sum(freqs * power) / np.sum(power))


# ---------------------------------------------------------------------------- shared audio


def test_mp3_round_trip_keeps_length_and_tone() -> None:
    rate = 24000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate * 2) / rate)).astype(np.float32)
    data = encode_mp3(tone, rate)
    assert data[:3] == b"ID3" or data[:2] == b"\xff\xfb"
    samples, decoded_rate = decode_audio(data)
    assert decoded_rate == rate
    assert samples.size == tone.size
    assert audio_seconds(data) == pytest.approx(2.0, abs=0.001)
    assert frequency_peak(samples, rate) == pytest.approx(440, abs=3)
    assert rms(samples) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_encode_mp3_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="sample rate"):
        encode_mp3(np.zeros(100, np.float32), 12345)
    with pytest.raises(ValueError, match="mono"):
        encode_mp3(np.zeros((2, 100), np.float32), 24000)
    with pytest.raises(ValueError, match="no samples"):
        encode_mp3(np.zeros(0, np.float32), 24000)


def test_decode_audio_downmixes_and_refuses_what_is_not_audio() -> None:
    samples, rate = decode_audio(wav(speech_like(1.0), 16000))
    assert rate == 16000 and samples.size == 16000
    with pytest.raises(ValueError, match="cannot be decoded"):
        decode_audio(b"this is not an audio file at all" * 10)
    with pytest.raises(ValueError, match="empty"):
        decode_audio(b"")
    with pytest.raises(ValueError, match="longer than"):
        decode_audio(wav(speech_like(3.0), 16000), max_seconds=1.0)
    png = avatar.thumbnail_png(avatar.presenters()[0])
    with pytest.raises(ValueError):
        decode_audio(png)


# ---------------------------------------------------------------------------- spelling


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("$100", "one hundred dollars"),
        ("$1", "one dollar"),
        ("$3.50", "three dollars and fifty cents"),
        ("€2 million", "two million euros"),
        ("3.5%", "three point five percent"),
        ("1st", "first"),
        ("22nd", "twenty-second"),
        ("100th", "one hundredth"),
        ("2,500", "two thousand five hundred"),
        ("1,000,001", "one million one"),
        ("-7", "minus seven"),
        ("0.25", "zero point two five"),
        ("1999", "nineteen ninety-nine"),
        ("2024", "twenty twenty-four"),
        ("2005", "two thousand five"),
        ("10:30", "ten thirty"),
        ("9:05", "nine oh five"),
        ("7:00", "seven o'clock"),
        ("#1", "number one"),
        ("Tom & Jerry", "Tom and Jerry"),
        ("me@home", "me at home"),
        ("2 + 2 = 4", "two plus two equals four"),
        ("The API is up", "The A P I is up"),
        ("two URLs", "two U R L's"),
        ("NASA launched", "NASA launched"),
        ("STOP THE API", "STOP THE API"),
        ("no numbers here", "no numbers here"),
    ],
)
def test_expand_english(text: str, spoken: str) -> None:
    assert spelling.expand(text) == spoken


def test_expand_other_languages_keeps_numbers_for_espeak() -> None:
    assert spelling.expand("50% & 3 perros", "es") == "50 por ciento y 3 perros"
    assert spelling.expand("Tom & Jerry", "fr-FR") == "Tom et Jerry"
    assert spelling.expand("Die API", "de") == "Die A P I"
    assert spelling.expand("100 $", "sv") == "100 $"  # currency words are English-only


def test_number_words() -> None:
    assert spelling.number_words(0) == "zero"
    assert spelling.number_words(115) == "one hundred fifteen"
    assert spelling.number_words(10**12 + 7) == "one trillion seven"
    assert spelling.number_words(10**16) == "one " + " ".join(["zero"] * 16)
    assert spelling.ordinal_words(12) == "twelfth"
    assert spelling.ordinal_words(40) == "fortieth"


# ---------------------------------------------------------------------------- voices


def test_voices_have_unique_stable_ids() -> None:
    voices = speech.voices()
    ids = [v.voice_id for v in voices]
    assert len(set(ids)) == len(ids) >= 24
    assert all(re.fullmatch(r"vg_voic_[0-9a-z]{11}", i) for i in ids)
    assert voices == speech.voices()
    # Derived from sha256("en-us+f3"): the same on every machine and every run.
    assert speech.voice("vg_voic_8ybhriiygfv") == ava()
    assert ava().display_name == "Ava (English, US)"
    assert speech.voice("vg_voic_doesnotexist") is None


def test_voices_cover_languages_and_genders() -> None:
    current = [v for v in speech.voices() if not v.is_deprecated]
    deprecated = [v for v in speech.voices() if v.is_deprecated]
    assert len(deprecated) == 1
    languages = {v.language_code for v in current}
    assert {"en-US", "en-GB", "es-ES", "fr-FR", "de-DE", "it-IT", "pt-BR", "nl-NL"} <= languages
    assert {"pl-PL", "hi-IN", "ja-JP", "zh-CN"} <= languages
    for code in languages:
        genders = sorted(v.gender for v in current if v.language_code == code)
        assert genders == ["FEMALE", "MALE"], code
    for v in speech.voices():
        assert "eSpeak NG" in v.description and "not an AI" in v.description
        assert v.supports_direct_tool_execution and not v.supports_all_languages


def test_default_voice() -> None:
    assert speech.default_voice(None) == ava()
    assert speech.default_voice("xx") == ava()
    assert speech.default_voice("es").language_code == "es-ES"
    assert speech.default_voice("en-GB").language_code == "en-GB"
    assert speech.default_voice("zh").espeak_name == "cmn"
    assert speech.default_voice("pt").language_code == "pt-BR"
    assert speech.speaks("fi") and speech.speaks("es-MX") and not speech.speaks("xx")


# ---------------------------------------------------------------------------- speech


def test_speech_is_audible_and_grows_with_text() -> None:
    short, rate, short_seconds = say("Hello there.")
    long, _, long_seconds = say(SENTENCE + " " + SENTENCE)
    assert rate == speech.SAMPLE_RATE
    assert rms(short) > 0.03 and rms(long) > 0.03
    assert 0.5 < short_seconds < 2.0
    assert long_seconds > 2.5 * short_seconds


def test_speech_says_who_made_it() -> None:
    artifact = speech.speak("Hi.", voice=ava())
    assert artifact.description is not None
    assert "eSpeak NG" in artifact.description and "Ava" in artifact.description
    assert "not an AI model" in artifact.description


def test_speed_changes_duration_and_is_clamped() -> None:
    _, _, normal = say(SENTENCE)
    _, _, fast = say(SENTENCE, speed=2.0)
    _, _, slow = say(SENTENCE, speed=0.5)
    _, _, fastest = say(SENTENCE, speed=100.0)
    _, _, clamped = say(SENTENCE, speed=4.0)
    assert fast < 0.7 * normal
    assert slow > 1.5 * normal
    assert fastest == pytest.approx(clamped, abs=0.05)
    with pytest.raises(ValueError, match="speed"):
        speech.speak(SENTENCE, voice=ava(), speed=0.0)


def test_language_changes_pronunciation() -> None:
    text = "Hola, me llamo Carlos y vivo en Madrid."
    _, _, english = say(text)
    _, _, spanish = say(text, language="es")
    _, _, spanish_again = say(text, language="es")
    assert spanish == pytest.approx(spanish_again, abs=0.02)  # eSpeak's own jitter is tiny
    assert abs(english - spanish) > 0.15
    with pytest.raises(ValueError, match="language"):
        speech.speak(text, voice=ava(), language="xx")


def test_language_keeps_the_voice_gender() -> None:
    ethan = next(v for v in speech.voices() if v.display_name.startswith("Ethan"))
    female, rate, _ = say("Bonjour, comment allez-vous?", language="fr")
    male, _, _ = say("Bonjour, comment allez-vous?", language="fr", voice=ethan)

    def pitch(samples: Samples) -> float:  # the strongest frequency below 400 Hz
        spectrum = np.abs(np.fft.rfft(samples))
        freqs = np.fft.rfftfreq(samples.size, 1 / rate)
        band = (freqs > 70) & (freqs < 400)
        return float(freqs[band][np.argmax(spectrum[band])])

    assert pitch(female) > 1.3 * pitch(male)


def test_replacements_apply_to_whole_words_in_order() -> None:
    _, _, plain = say("I like cats.")
    _, _, replaced = say(
        "I like cats.", replacements=[("cats", "dogs and horses and elephants and giraffes")]
    )
    _, _, partial = say("I like cats.", replacements=[("cat", "dogs and horses and elephants")])
    assert replaced > plain + 1.0
    assert partial == pytest.approx(plain, abs=0.1)  # "cat" is not a whole word of "cats"
    _, _, chained = say("one", replacements=[("one", "two"), ("two", "three four five six")])
    assert chained > 1.2


def test_auto_expand_speaks_the_expanded_text() -> None:
    text = "The API costs $3.50 per 1,000 calls, 25% off on the 3rd."
    _, _, expanded = say(text, auto_expand=True)
    _, _, written = say(spelling.expand(text))
    _, _, raw = say(text)
    assert expanded == pytest.approx(written, rel=0.03)
    assert abs(expanded - raw) > 0.2


def test_empty_or_too_long_text_is_refused() -> None:
    with pytest.raises(ValueError, match="no text"):
        speech.speak("   ", voice=ava())
    with pytest.raises(ValueError, match="no text"):
        speech.speak("hello", voice=ava(), replacements=[("hello", "")])
    with pytest.raises(ValueError, match="limit"):
        speech.speak("a" * (speech.MAX_TEXT_CHARS + 1), voice=ava())
    with pytest.raises(ValueError, match="nothing"):
        speech.speak("...", voice=ava())


def test_results_differ_by_index() -> None:
    first = speech.speak(SENTENCE, voice=ava(), index=0)
    second = speech.speak(SENTENCE, voice=ava(), index=1)
    assert first.data != second.data


def test_every_voice_speaks() -> None:
    for v in speech.voices():
        samples, _, seconds = say("1 2 3", voice=v)
        assert seconds > 0.3 and rms(samples) > 0.02, v.display_name


def test_speech_is_thread_safe() -> None:
    results: list[float] = []
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            results.append(speech.speak(SENTENCE, voice=ava(), index=index).seconds or 0.0)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 6 and max(results) - min(results) < 0.1


# ---------------------------------------------------------------------------- sound effects


@pytest.mark.parametrize("seconds", [0.5, 1.0, 5.0, 12.3])
def test_sound_effect_has_the_asked_duration(seconds: float) -> None:
    artifact = sound.sound_effect("rain on a window", seconds=seconds)
    samples, rate = decode_audio(artifact.data)
    assert artifact.extension == "mp3" and rate == sound.SAMPLE_RATE
    assert samples.size / rate == pytest.approx(seconds, abs=0.1)
    assert artifact.seconds == pytest.approx(seconds, abs=0.01)
    assert rms(samples) > 0.02


def test_sound_effect_duration_is_clamped() -> None:
    assert sound.sound_effect("beep", seconds=0.01).seconds == sound.MIN_SECONDS
    long = sound.sound_effect("beep", seconds=1000)
    assert long.seconds == sound.MAX_SECONDS
    assert audio_seconds(long.data) == pytest.approx(sound.MAX_SECONDS, abs=0.1)


def test_every_family_is_audible() -> None:
    for family in sound.families():
        artifact = sound.sound_effect(family, seconds=2.0)
        samples, _ = decode_audio(artifact.data)
        assert rms(samples) > 0.01, family
        assert np.max(np.abs(samples)) < 1.0, family
        assert artifact.description is not None and family in artifact.description


def test_sound_effects_are_deterministic_and_vary_by_prompt_and_index() -> None:
    rain = sound.sound_effect("rain", seconds=2.0)
    assert rain.data == sound.sound_effect("rain", seconds=2.0).data
    assert rain.data != sound.sound_effect("rain", seconds=2.0, index=1).data
    assert rain.data != sound.sound_effect("church bell", seconds=2.0).data
    assert rain.description is not None and "not an AI model" in rain.description


def test_keywords_shape_the_sound() -> None:
    def analysed(prompt: str) -> tuple[Samples, int]:
        return decode_audio(sound.sound_effect(prompt, seconds=3.0, influence=1.0).data)

    beep, rate = analysed("a short beep")
    assert frequency_peak(beep, rate) == pytest.approx(1000, abs=30)
    engine, _ = analysed("engine hum")
    rain, _ = analysed("heavy rain")
    assert centroid(engine, rate) < 700 < 1500 < centroid(rain, rate)
    boom, _ = analysed("explosion")
    second = rate
    assert rms(boom[:second]) > 3 * rms(boom[-second:])  # a burst that decays


def test_influence_is_validated_and_defaults() -> None:
    with pytest.raises(ValueError, match="influence"):
        sound.sound_effect("rain", influence=1.5)
    default = sound.sound_effect("rain", seconds=1.0)
    assert default.data == sound.sound_effect("rain", seconds=1.0, influence=0.3).data
    loose = sound.sound_effect("rain", seconds=1.0, influence=0.0)
    assert loose.description is not None and "rain +" in loose.description


# ---------------------------------------------------------------------------- avatars


def test_presenters_have_unique_ids_and_both_genders() -> None:
    presenters = avatar.presenters()
    ids = [p.presenter_id for p in presenters]
    assert len(presenters) == 6 and len(set(ids)) == 6
    assert all(re.fullmatch(r"vg_pres_[0-9a-z]{11}", i) for i in ids)
    assert sorted(p.gender for p in presenters) == ["FEMALE"] * 3 + ["MALE"] * 3
    assert all(avatar.presenter(i) is p for i, p in zip(ids, presenters, strict=True))
    assert avatar.presenter("vg_pres_nobody") is None


def test_presenter_images() -> None:
    from PIL import Image

    p = avatar.presenters()[0]
    with Image.open(io.BytesIO(avatar.image_png(p))) as image:
        assert image.format == "PNG" and image.size == (720, 720)
    with Image.open(io.BytesIO(avatar.thumbnail_png(p))) as image:
        assert image.format == "PNG" and image.size == (256, 256)
    wide = avatar.portrait(p, size=(640, 360))
    assert wide.size == (640, 360)


def test_portrait_mouth_and_eyes_move_only_the_face_parts() -> None:
    p = avatar.presenters()[1]
    rest = np.asarray(avatar.portrait(p), dtype=np.int16)
    talking = np.asarray(avatar.portrait(p, mouth_open=1.0), dtype=np.int16)
    blinking = np.asarray(avatar.portrait(p, blink=1.0), dtype=np.int16)
    mouth_rows = np.flatnonzero(np.abs(talking - rest).sum(axis=(1, 2)))
    eye_rows = np.flatnonzero(np.abs(blinking - rest).sum(axis=(1, 2)))
    assert mouth_rows.size and eye_rows.size
    assert eye_rows.max() < mouth_rows.min()  # the eyes are above the mouth
    assert mouth_rows.max() - mouth_rows.min() < 100  # and only the mouth changed


def _mp4_frames(data: bytes) -> tuple[list[npt.NDArray[np.uint8]], str | None, float]:
    with av.open(io.BytesIO(data), "r") as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_codec = audio.codec_context.name if audio else None
        frames = [
            np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)
            for frame in container.decode(video=0)
        ]
        duration = float(container.duration or 0) / 1e6
    return frames, audio_codec, duration


def test_talking_video_follows_the_audio() -> None:
    rate = 16000
    silence = np.zeros(rate * 2, np.float32)
    clip = np.concatenate([silence, speech_like(2.0, rate), silence])
    p = avatar.presenters()[1]
    artifact = avatar.talking_video(p, wav(clip, rate))
    assert artifact.extension == "mp4" and (artifact.width, artifact.height) == (720, 720)
    assert artifact.seconds == pytest.approx(6.0, abs=0.01)
    assert artifact.description is not None and "not an AI model" in artifact.description
    data = artifact.data
    assert data[4:8] == b"ftyp" and 0 < data.find(b"moov") < data.find(b"mdat")
    frames, audio_codec, duration = _mp4_frames(data)
    assert audio_codec == "aac"
    assert len(frames) == pytest.approx(6.0 * avatar.FPS, abs=1)
    assert duration == pytest.approx(6.0, abs=0.15)

    def dark_mouth(frame: npt.NDArray[np.uint8]) -> int:  # the open mouth's dark inside
        return int(np.count_nonzero(frame[280:360, 300:420] < 45))

    quiet = [dark_mouth(f) for f in frames[10:45]]  # 0.4-1.8 s: silence
    loud = [dark_mouth(f) for f in frames[55:95]]  # 2.2-3.8 s: syllables
    assert max(quiet) < 20  # shut (a few dark pixels of compression noise at the lips)
    assert max(loud) > 200
    assert np.std(loud) > 30  # opens and closes with the syllables, not stuck open


def test_talking_video_reads_other_formats_and_sizes() -> None:
    out = io.BytesIO()
    rate = 48000
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            speech_like(1.0, rate).reshape(1, -1), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    artifact = avatar.talking_video(avatar.presenters()[4], out.getvalue(), size=(320, 240))
    frames, audio_codec, _ = _mp4_frames(artifact.data)
    assert audio_codec == "aac" and frames[0].shape == (240, 320)
    assert len(frames) == pytest.approx(25, abs=1)


def test_talking_video_varies_by_index() -> None:
    audio = wav(speech_like(1.0), 16000)
    p = avatar.presenters()[2]
    first = avatar.talking_video(p, audio, size=(160, 160))
    assert first.data == avatar.talking_video(p, audio, size=(160, 160)).data
    assert first.data != avatar.talking_video(p, audio, size=(160, 160), index=1).data


def test_talking_video_refuses_bad_input() -> None:
    p = avatar.presenters()[0]
    with pytest.raises(ValueError, match="cannot be decoded"):
        avatar.talking_video(p, b"\x00\x01garbage" * 100)
    with pytest.raises(ValueError, match="no audio stream"):
        avatar.talking_video(p, _silent_video())
    with pytest.raises(ValueError, match="even"):
        avatar.talking_video(p, wav(speech_like(0.5), 16000), size=(321, 240))
    with pytest.raises(ValueError, match="longer than 300"):
        avatar.talking_video(p, wav(np.zeros(8000 * 301, np.float32), 8000))


def _silent_video() -> bytes:
    """A one-frame MP4 without an audio stream."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        image = np.zeros((64, 64, 3), np.uint8)
        container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return out.getvalue()


def test_preview_speaks_the_presenter() -> None:
    p = avatar.presenters()[3]
    data = avatar.preview_mp4(p)
    frames, audio_codec, duration = _mp4_frames(data)
    assert audio_codec == "aac" and frames[0].shape == (360, 360)
    assert 1.5 < duration < 5.0
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_replacements_that_feed_each_other_are_stopped_at_the_limit() -> None:
    """Each replacement may grow the text a hundredfold: the length is checked after each one,
    before the next can run the worker out of memory."""
    growing = [("a", "a " * 100)] * 5
    with pytest.raises(ValueError, match="after replacements is longer than"):
        speech.speak("a " * 2000, voice=speech.default_voice("en"), replacements=growing)


def test_a_spelled_out_text_is_held_to_the_limit_too() -> None:
    digits = " ".join(["987654321987"] * (speech.MAX_TEXT_CHARS // 13))
    with pytest.raises(ValueError, match="spelled out is longer than"):
        speech.speak(digits, voice=speech.default_voice("en"), auto_expand=True)
