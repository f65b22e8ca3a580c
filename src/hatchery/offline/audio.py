"""Audio encoding and decoding shared by the offline makers (speech, sound effects, avatars).

Plain signal plumbing through PyAV (FFmpeg), no AI model:

* :func:`encode_mp3` turns float samples into a mono MP3 (libmp3lame, :data:`MP3_BIT_RATE`);
  the MP3 carries a LAME/Xing header with the encoder delay and padding, so decoders trim it
  and the decoded length equals the encoded one;
* :func:`decode_audio` reads any file FFmpeg reads (mp3, wav, m4a/aac, ogg/opus, flac, webm,
  the audio track of a video, ...) into float32 mono samples at the file's own rate;
* :func:`audio_seconds` is the decoded duration of such a file.

Everything happens in memory; nothing here touches files or the network.
"""

from __future__ import annotations

import io

import av
import numpy as np
import numpy.typing as npt

__all__ = ["MP3_BIT_RATE", "FloatSamples", "audio_seconds", "decode_audio", "encode_mp3"]

FloatSamples = npt.NDArray[np.float32]

MP3_BIT_RATE = 64_000
"""Bit rate of the MP3s made here (mono speech and effects: 64 kbps is plenty)."""

MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
"""The sample rates an MP3 can have; :func:`encode_mp3` refuses any other."""


def _frame(samples: FloatSamples, rate: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="fltp", layout="mono")
    frame.sample_rate = rate
    return frame


def _as_samples(samples: npt.ArrayLike) -> FloatSamples:
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"expected mono samples (a 1-D array), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("samples must be finite")
    return np.ascontiguousarray(np.clip(array, -1.0, 1.0))


def encode_mp3(samples: npt.ArrayLike, rate: int) -> bytes:
    """Encode mono float samples in [-1, 1] (clipped) at ``rate`` Hz as an MP3 file."""
    if rate not in MP3_RATES:
        raise ValueError(f"an MP3 cannot have a sample rate of {rate} Hz (one of {MP3_RATES})")
    array = _as_samples(samples)
    if array.size == 0:
        raise ValueError("no samples to encode")
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = MP3_BIT_RATE
        container.mux(stream.encode(_frame(array, rate)))
        container.mux(stream.encode(None))
    return out.getvalue()


def _mono(frame: av.AudioFrame) -> FloatSamples:
    return np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1)


def _decoded(
    container: av.container.InputContainer, max_seconds: float | None
) -> tuple[list[FloatSamples], int]:
    if not container.streams.audio:
        raise ValueError("the file has no audio stream")
    stream = container.streams.audio[0]
    rate = int(stream.codec_context.sample_rate or stream.rate or 0)
    if rate <= 0:
        raise ValueError("the audio stream has no sample rate")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    limit = None if max_seconds is None else int(max_seconds * rate) + 1
    chunks: list[FloatSamples] = []
    total = 0
    for frame in container.decode(stream):
        for mono in resampler.resample(frame):
            chunk = _mono(mono)
            chunks.append(chunk)
            total += chunk.size
        if limit is not None and total > limit:
            raise ValueError(f"the audio is longer than {max_seconds:g} s")
    chunks.extend(_mono(m) for m in resampler.resample(None))
    return chunks, rate


def decode_audio(data: bytes, *, max_seconds: float | None = None) -> tuple[FloatSamples, int]:
    """Decode the first audio stream of ``data`` to ``(float32 mono samples, sample rate)``.

    Multichannel audio is downmixed. ``ValueError`` if ``data`` is not a media file FFmpeg can
    read, has no audio stream, or (with ``max_seconds``) is longer than ``max_seconds``.
    """
    if not data:
        raise ValueError("the audio file is empty")
    try:
        with av.open(io.BytesIO(data), "r") as container:
            chunks, rate = _decoded(container, max_seconds)
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise ValueError(f"the audio cannot be decoded: {error}") from error
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise ValueError("the audio stream has no samples")
    return np.clip(np.nan_to_num(samples), -1.0, 1.0), rate


def audio_seconds(data: bytes) -> float:
    """The decoded duration of the audio file ``data``, in seconds (see :func:`decode_audio`)."""
    samples, rate = decode_audio(data)
    return samples.size / rate
