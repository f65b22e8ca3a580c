"""Offline sound effects by procedural synthesis.

This is not an AI model and does not understand the prompt: a handful of classical synthesis
recipes (shaped noise, tones with envelopes, impulse trains, harmonic drones, FM chirps) are
picked and parameterised by keywords found in the prompt:

==============  ===================================================================
rain            rain, drizzle, shower: filtered hiss plus droplet clicks
water           water, stream, river, ocean, waves, sea, splash, bubbles: brown
                noise, slow swells, bubble chirps
wind            wind, breeze, gust, storm, air: band noise with gusting bands
fire            fire, campfire, fireplace, crackle: low roar plus crackles
beep            beep, notification, ping, microwave: sine pulses
alarm           alarm, buzzer, warning: two alternating tones
siren           siren, police, ambulance: a sweeping tone
bell            bell, chime, ding, gong, ring: inharmonic partials, decaying strikes
explosion       explosion, boom, blast, bang, crash, impact: a low noise burst, decay
thunder         thunder, thunderstorm, rumble: a crack and rolling rumbles
footsteps       footsteps, steps, walking, running: alternating thuds
knock           knock, door, tap: groups of three knocks
click           click, tick, clock, typing, keyboard, mouse: short clicks
engine          engine, motor, car, hum, drone, machine, fan, generator, buzz: harmonics
birds           bird, birds, chirp, tweet, whistle, forest: FM chirps
laser           laser, zap, blaster, sci-fi, spaceship: falling sweeps
whoosh          whoosh, swoosh, swish, transition, swipe: swelling noise sweeps
==============  ===================================================================

A prompt naming none of them gets a seeded blend of two recipes. Everything is seeded from
``sha256(index, prompt)``, so the same request gives the same sound.

``influence`` in [0, 1] (None means :data:`DEFAULT_INFLUENCE`) is how strictly the prompt's
keywords shape the sound: each recipe's parameters (pitch, tempo, density, brightness) are
drawn around its canonical values with a spread proportional to ``1 - influence``, and below
0.3 an extra seeded recipe that the prompt did not name is mixed in at a relative gain of
``0.3 - influence`` (0.3 at influence 0). At 1 a "beep" is exactly the canonical beep.

``seconds`` is clamped to :data:`MIN_SECONDS`-:data:`MAX_SECONDS`; the output is a mono MP3
at :data:`SAMPLE_RATE` Hz, 64 kbps, loudness-normalised (peaks soft-limited below full
scale), with short fades at both ends.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hatchery.offline.audio import FloatSamples, encode_mp3
from hatchery.providers.base import Artifact

__all__ = [
    "DEFAULT_INFLUENCE",
    "MAX_SECONDS",
    "MIN_SECONDS",
    "SAMPLE_RATE",
    "families",
    "sound_effect",
]

SAMPLE_RATE = 24000
MIN_SECONDS = 0.5
MAX_SECONDS = 30.0
DEFAULT_INFLUENCE = 0.3

_STRAY_BELOW = 0.3  # below this influence, a recipe the prompt did not name is mixed in
_TARGET_RMS = 0.16  # loudness of the output (full scale 1), peaks soft-limited at the ceiling
_CEILING = 0.89

Signal = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Context:
    """What a recipe works with: the seeded generator, the length, and the parameter spread."""

    rng: np.random.Generator
    size: int
    spread: float  # 1 - influence

    @property
    def t(self) -> Signal:
        return np.arange(self.size, dtype=np.float64) / SAMPLE_RATE

    def vary(self, value: float, spread: float = 0.35) -> float:
        """``value`` moved by a seeded log-normal factor whose width scales with the spread."""
        return value * math.exp(self.spread * spread * float(self.rng.normal()))

    def noise(self) -> Signal:
        return self.rng.standard_normal(self.size)

    def slow(self, hertz: float, floor: float = 0.2) -> Signal:
        """A smooth random envelope in [floor, 1] changing about ``hertz`` times a second."""
        points = max(int(self.size / SAMPLE_RATE * hertz) + 2, 2)
        knots = self.rng.uniform(floor, 1.0, points)
        return np.interp(np.linspace(0, points - 1, self.size), np.arange(points), knots)

    def times(self, per_second: float, regular: float = 0.0) -> Signal:
        """Event times (s): Poisson at ``per_second``, or near-regular with jitter ``regular``."""
        seconds = self.size / SAMPLE_RATE
        if regular > 0:
            step = 1.0 / per_second
            base = np.arange(self.rng.uniform(0, step * 0.5), seconds, step)
            return base + self.rng.normal(0, regular * step, base.size)
        count = self.rng.poisson(per_second * seconds)
        return np.sort(self.rng.uniform(0, seconds, count))


# ---------------------------------------------------------------------------- building blocks


def _unit(signal: Signal) -> Signal:
    """``signal`` scaled to a root mean square of 1 (silence stays silent)."""
    return signal / (float(np.sqrt(np.mean(signal**2))) + 1e-12)


def _band(signal: Signal, low: float, high: float, order: int = 2) -> Signal:
    """``signal`` through a zero-phase Butterworth-shaped band pass (done in the spectrum)."""
    spectrum = np.fft.rfft(signal)
    freqs = np.fft.rfftfreq(signal.size, 1 / SAMPLE_RATE)
    freqs[0] = 1e-3
    gain = 1 / np.sqrt(1 + (low / freqs) ** (2 * order)) if low > 0 else np.ones_like(freqs)
    gain /= np.sqrt(1 + (freqs / high) ** (2 * order))
    return np.fft.irfft(spectrum * gain, signal.size)


def _tilted(signal: Signal, slope: float) -> Signal:
    """``signal`` with its spectrum tilted by ``f ** slope`` (-0.5 pink, -1 brown)."""
    spectrum = np.fft.rfft(signal)
    freqs = np.maximum(np.fft.rfftfreq(signal.size, 1 / SAMPLE_RATE), 20.0)
    return np.fft.irfft(spectrum * freqs**slope, signal.size)


def _place(
    c: _Context, times: Signal, kernel: Signal, gains: Signal | tuple[float, float] = (1.0, 1.0)
) -> Signal:
    """``kernel`` added at each of ``times`` (seconds), scaled by ``gains`` (an array, or a
    range of seeded random gains): an FFT convolution of an impulse train."""
    if isinstance(gains, tuple):
        gains = c.rng.uniform(gains[0], gains[1], times.size)
    impulses = np.zeros(c.size)
    index = np.round(times * SAMPLE_RATE).astype(np.int64)
    keep = (index >= 0) & (index < c.size)
    np.add.at(impulses, index[keep], gains[keep])
    length = 1 << math.ceil(math.log2(c.size + kernel.size))
    out = np.fft.irfft(np.fft.rfft(impulses, length) * np.fft.rfft(kernel, length), length)
    return out[: c.size]


def _decaying(hertz: float, seconds: float, tau: float) -> Signal:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.sin(2 * np.pi * hertz * t) * np.exp(-t / tau)


def _burst(c: _Context, seconds: float, tau: float, low: float, high: float) -> Signal:
    size = int(seconds * SAMPLE_RATE)
    t = np.arange(size) / SAMPLE_RATE
    noise = c.rng.standard_normal(size) * np.exp(-t / tau)
    return _band(noise, low, high)


def _gate(t: Signal, period: float, on: float, ramp: float = 0.005) -> Signal:
    """1 during the first ``on`` seconds of every ``period``, with short linear ramps."""
    phase = np.mod(t, period)
    return np.clip(np.minimum(phase, on - phase) / ramp, 0.0, 1.0)


def _tone(t: Signal, hertz: Signal | float, overtone: float = 0.0) -> Signal:
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(hertz, t.shape)) / SAMPLE_RATE
    return np.sin(phase) + overtone * np.sin(3 * phase)


# ---------------------------------------------------------------------------- recipes


def _rain(c: _Context) -> Signal:
    hiss = _band(_tilted(c.noise(), -0.3), c.vary(500), c.vary(9000))
    drop = _decaying(c.vary(3200, 0.5), 0.012, 0.003)
    drops = _place(c, c.times(c.vary(30)), drop, (0.2, 1.0))
    return _unit(hiss) + 0.6 * _unit(drops)


def _water(c: _Context) -> Signal:
    flow = _band(_tilted(c.noise(), -1.0), 40, c.vary(1400))
    swell = 0.55 + 0.45 * np.sin(2 * np.pi * c.t / c.vary(7.0) + c.rng.uniform(0, 6.3))
    bubble_t = np.arange(int(0.06 * SAMPLE_RATE)) / SAMPLE_RATE
    bubble = np.sin(2 * np.pi * c.vary(500) * (bubble_t + 8 * bubble_t**2)) * np.exp(
        -bubble_t / 0.02
    )
    bubbles = _place(c, c.times(c.vary(5)), bubble, (0.3, 1.0))
    return _unit(flow) * swell + 0.4 * _unit(bubbles)


def _wind(c: _Context) -> Signal:
    out = np.zeros(c.size)
    for low, high in ((150, 500), (400, 1300), (1100, 3200)):
        band = _band(c.noise(), c.vary(low), c.vary(high))
        out += _unit(band) * c.slow(c.vary(0.4), 0.05) ** 2
    return out


def _fire(c: _Context) -> Signal:
    roar = _band(_tilted(c.noise(), -1.0), 30, c.vary(700))
    crackle = _burst(c, 0.008, 0.002, 1500, 9000)
    times = c.times(c.vary(9))
    cracks = _place(c, times, crackle, np.minimum(c.rng.pareto(2.0, times.size), 3.0) + 0.2)
    return _unit(roar) + 0.3 * _unit(cracks)


def _beep(c: _Context) -> Signal:
    period = c.vary(0.8, 0.3)
    return _tone(c.t, c.vary(1000, 0.3), 0.1) * _gate(c.t, period, min(0.15, period / 2))


def _alarm(c: _Context) -> Signal:
    low = c.vary(750, 0.25)
    switch = c.vary(0.25, 0.3)
    pitch = np.where(np.mod(c.t, 2 * switch) < switch, low, low * 1.26)
    return _tone(c.t, pitch, 0.3)


def _siren(c: _Context) -> Signal:
    period, low = c.vary(2.4, 0.3), c.vary(650, 0.25)
    sweep = 0.5 - 0.5 * np.cos(2 * np.pi * c.t / period)
    return _tone(c.t, low * (1 + sweep), 0.15)


def _bell(c: _Context) -> Signal:
    base, seconds = c.vary(660, 0.4), min(c.size / SAMPLE_RATE, 3.0)
    strike = np.zeros(int(seconds * SAMPLE_RATE))
    for ratio, gain, tau in ((1.0, 1.0, 1.2), (2.0, 0.5, 0.8), (2.76, 0.4, 0.5), (5.4, 0.25, 0.25)):
        strike += gain * _decaying(base * ratio, seconds, c.vary(tau, 0.3))
    return _place(c, c.times(1 / c.vary(2.0, 0.3), 0.05), strike)


def _explosion(c: _Context) -> Signal:
    body = _burst(c, c.size / SAMPLE_RATE, c.vary(0.9, 0.4), 20, c.vary(350, 0.4))
    crack = _burst(c, 0.2, 0.03, 200, 8000)
    boom = body / (float(np.std(body[: SAMPLE_RATE // 2])) + 1e-9)
    boom[: crack.size] += 0.6 * _unit(crack)[: boom.size]
    return _place(c, np.array([0.03]), boom)


def _thunder(c: _Context) -> Signal:
    rumble = _band(_tilted(c.noise(), -1.0), 20, c.vary(250)) * c.slow(c.vary(1.5), 0.0) ** 3
    crack = _burst(c, 1.5, c.vary(0.4), 60, 4000)
    cracks = _place(c, c.times(1 / c.vary(6.0)), crack) + _place(c, np.array([0.05]), crack)
    return _unit(rumble) + _unit(cracks)


def _footsteps(c: _Context) -> Signal:
    step = _burst(c, 0.12, 0.025, 40, c.vary(900)) + 0.5 * _decaying(c.vary(80), 0.12, 0.03)
    times = c.times(1 / c.vary(0.55, 0.3), 0.06)
    gains = np.where(np.arange(times.size) % 2 == 0, 1.0, 0.75)
    return _place(c, times, step, gains)


def _knock(c: _Context) -> Signal:
    knock = _decaying(c.vary(180), 0.09, 0.02) + 0.3 * _burst(c, 0.09, 0.004, 500, 6000)
    groups = c.times(1 / c.vary(1.8, 0.3), 0.05)
    gap = c.vary(0.18, 0.2)
    times = (groups[:, None] + np.arange(3)[None, :] * gap).reshape(-1)
    return _place(c, times, knock)


def _click(c: _Context) -> Signal:
    tick = _decaying(c.vary(2200), 0.01, 0.0015)
    tock = _decaying(c.vary(1700), 0.01, 0.0015)
    period = c.vary(0.5, 0.4)
    times = c.times(1 / period, 0.02)
    return _place(c, times[::2], tick) + _place(c, times[1::2], tock)


def _engine(c: _Context) -> Signal:
    base = c.vary(60, 0.4)
    wobble = 1 + 0.01 * np.sin(2 * np.pi * c.vary(0.3) * c.t) + 0.004 * (c.slow(2.0) - 0.6)
    out = np.zeros(c.size)
    for harmonic in range(1, 13):
        out += _tone(c.t, base * harmonic * wobble) / harmonic**1.1
    hiss = _band(c.noise(), 100, 2000)
    return _unit(out) + 0.15 * _unit(hiss)


def _birds(c: _Context) -> Signal:
    size = int(0.12 * SAMPLE_RATE)
    t = np.arange(size) / SAMPLE_RATE
    low = c.vary(3000, 0.3)
    chirp = np.sin(2 * np.pi * (low * t + low * 6 * t**2)) * np.sin(np.pi * t / t[-1]) ** 2
    return _place(c, c.times(c.vary(2.5)), chirp, (0.3, 1.0))


def _laser(c: _Context) -> Signal:
    size = int(c.vary(0.25, 0.3) * SAMPLE_RATE)
    t = np.arange(size) / SAMPLE_RATE
    pitch = c.vary(2200, 0.3) * np.exp(-t / (t[-1] / 2.5))
    zap = _tone(t, pitch, 0.3) * np.exp(-t / (t[-1] / 2))
    return _place(c, c.times(1 / c.vary(0.8, 0.3), 0.1), zap)


def _whoosh(c: _Context) -> Signal:
    length = c.vary(0.9, 0.3)
    t = np.arange(int(length * SAMPLE_RATE)) / SAMPLE_RATE
    rise = np.sin(np.pi * t / t[-1])
    low = _band(c.rng.standard_normal(t.size), 150, 900) * rise**2 * (1 - t / t[-1])
    high = _band(c.rng.standard_normal(t.size), 800, 5000) * rise**2 * (t / t[-1])
    return _place(c, c.times(1 / c.vary(2.2, 0.3), 0.1), low + high)


@dataclass(frozen=True)
class _Family:
    name: str
    keywords: tuple[str, ...]
    make: Callable[[_Context], Signal]


_FAMILIES = (
    _Family("rain", ("rain", "drizzle", "shower", "raindrop"), _rain),
    _Family(
        "water",
        ("water", "stream", "river", "ocean", "wave", "sea", "splash", "bubble", "brook", "creek"),
        _water,
    ),
    _Family("wind", ("wind", "breeze", "gust", "storm", "air", "windy"), _wind),
    _Family("fire", ("fire", "campfire", "fireplace", "crackle", "crackling", "flame"), _fire),
    _Family("beep", ("beep", "notification", "ping", "microwave", "blip"), _beep),
    _Family("alarm", ("alarm", "buzzer", "warning", "alert"), _alarm),
    _Family("siren", ("siren", "police", "ambulance"), _siren),
    _Family("bell", ("bell", "chime", "ding", "gong", "ring", "doorbell"), _bell),
    _Family(
        "explosion",
        ("explosion", "explode", "firework", "boom", "blast", "bang", "crash", "impact", "gunshot"),
        _explosion,
    ),
    _Family("thunder", ("thunder", "thunderstorm", "rumble", "lightning"), _thunder),
    _Family("footsteps", ("footstep", "step", "walk", "walking", "running", "stomp"), _footsteps),
    _Family("knock", ("knock", "door", "tap"), _knock),
    _Family("click", ("click", "tick", "clock", "typing", "keyboard", "mouse", "tock"), _click),
    _Family(
        "engine",
        ("engine", "motor", "car", "hum", "drone", "machine", "fan", "generator", "buzz", "truck"),
        _engine,
    ),
    _Family("birds", ("bird", "chirp", "tweet", "whistle", "forest", "birdsong"), _birds),
    _Family("laser", ("laser", "zap", "blaster", "sci-fi", "scifi", "spaceship", "ray"), _laser),
    _Family("whoosh", ("whoosh", "swoosh", "swish", "transition", "swipe"), _whoosh),
)
_SUFFIXES = r"(?:s|es|ed|ing|ings|y|er|ers)?"
_PHRASES = (  # word pairs that name one thing: (phrase, the keyword it stands for)
    ("fire alarm", "alarm"),
    ("smoke alarm", "alarm"),
    ("car alarm", "alarm"),
    ("fire truck", "siren"),
    ("fire engine", "siren"),
    ("door bell", "doorbell"),
    ("wind chime", "chime"),
    ("rain forest", "forest"),
)


def families() -> tuple[str, ...]:
    """The names of the synthesis recipes, in order."""
    return tuple(family.name for family in _FAMILIES)


def _matches(prompt: str) -> list[tuple[_Family, int]]:
    """The families whose keywords the prompt names, with how many times."""
    text = prompt.lower()
    for phrase, keyword in _PHRASES:
        text = re.sub(rf"\b{phrase}", keyword, text)
    words = re.findall(r"[a-z]+(?:-[a-z]+)*", text)
    found = []
    for family in _FAMILIES:
        pattern = re.compile(r"(?:" + "|".join(map(re.escape, family.keywords)) + r")" + _SUFFIXES)
        hits = sum(1 for word in words if pattern.fullmatch(word))
        if hits:
            found.append((family, hits))
    return found


def _rng(prompt: str, index: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{index}\0{prompt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def _layers(prompt: str, c: _Context, influence: float) -> list[tuple[_Family, float]]:
    chosen = [(family, float(hits)) for family, hits in _matches(prompt)]
    if not chosen:  # nothing named: a seeded blend of two recipes
        picks = c.rng.choice(len(_FAMILIES), size=2, replace=False)
        return [(_FAMILIES[int(i)], float(w)) for i, w in zip(picks, (1.0, 0.5), strict=True)]
    total = sum(weight for _, weight in chosen)
    layers = [(family, weight / total) for family, weight in chosen]
    if influence < _STRAY_BELOW:
        others = [family for family in _FAMILIES if family not in dict(chosen)]
        extra = others[int(c.rng.integers(len(others)))]
        layers.append((extra, _STRAY_BELOW - influence))
    return layers


def _finish(signal: Signal) -> FloatSamples:
    fade_in, fade_out = int(0.005 * SAMPLE_RATE), int(0.05 * SAMPLE_RATE)
    signal = signal - float(np.mean(signal))
    signal[:fade_in] *= np.linspace(0.0, 1.0, fade_in)
    signal[-fade_out:] *= np.linspace(1.0, 0.0, fade_out)
    peak = float(np.max(np.abs(signal)))
    if peak < 1e-9:
        raise RuntimeError("the synthesis came out silent")
    rms = float(np.sqrt(np.mean(signal**2)))
    gain = min(_TARGET_RMS / rms, 1.5 / peak)  # loud enough, sparse peaks limited below
    return (_CEILING * np.tanh(signal * gain / _CEILING)).astype(np.float32)


def _checked(seconds: float, influence: float | None) -> tuple[float, float]:
    if not math.isfinite(seconds):
        raise ValueError(f"the duration must be a number of seconds, got {seconds}")
    strength = DEFAULT_INFLUENCE if influence is None else influence
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"the prompt influence must be between 0 and 1, got {influence}")
    return min(max(seconds, MIN_SECONDS), MAX_SECONDS), strength


def sound_effect(
    prompt: str, *, seconds: float = 5.0, influence: float | None = None, index: int = 0
) -> Artifact:
    """A ``seconds``-long procedural sound effect for ``prompt`` (mono MP3 artifact).

    ``seconds`` is clamped to 0.5-30; ``influence`` (0-1, None → 0.3) is how strictly the
    prompt's keywords shape the sound (see the module documentation); ``index`` (the result's
    number) reseeds, so several results differ. Deterministic for the same arguments.
    """
    duration, strength = _checked(seconds, influence)
    size = round(duration * SAMPLE_RATE)
    context = _Context(rng=_rng(prompt, index), size=size, spread=1.0 - strength)
    layers = _layers(prompt, context, strength)
    mix = np.zeros(size)
    for family, weight in layers:
        mix += weight * _unit(family.make(context))
    samples = _finish(mix)
    names = " + ".join(family.name for family, _ in layers)
    return Artifact(
        data=encode_mp3(samples, SAMPLE_RATE),
        extension="mp3",
        width=None,
        height=None,
        seconds=size / SAMPLE_RATE,
        description=(
            f"Procedural sound synthesis ({names}) shaped by keywords of the prompt; made by "
            "Hatchery's local provider, not an AI model."
        ),
    )
