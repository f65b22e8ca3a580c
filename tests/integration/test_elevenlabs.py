"""The ElevenLabs adapter against its strict fake on 127.0.0.1 (``tests/fake_elevenlabs.py``):
the text-to-speech and sound-effect requests it sends (path, query, every body field), the MP3s
it reads back and what it says they cost, how each of ElevenLabs' error answers is classified,
what it refuses before sending anything, and the account's voices (paged, mapped, cached); then
the voice list of ``GET /v1/resources/tts-voices`` and the ``voiceId`` a request may name."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hatchery.api.videogen.requests import _voice
from hatchery.api.videogen.resources import speaking_voices
from hatchery.domain.tools import ToolParams
from hatchery.errors import NotFound, ServiceUnavailable
from hatchery.offline import speech
from hatchery.providers.base import (
    Job,
    ProviderError,
    RetryableError,
    TerminalError,
    UpstreamUnreachable,
)
from hatchery.providers.elevenlabs import (
    DEFAULT_VOICE,
    VOICES_FRESH,
    VOICES_RETRY,
    ElevenLabsProvider,
    vendor_error,
)
from hatchery.providers.inputs import InputFiles
from hatchery.providers.upstream import Upstream
from tests.fake_elevenlabs import ELEVENLABS_KEY, FakeElevenLabs, voice_entry
from tests.fake_upstreams import UPSTREAM_TIMEOUT

ALICE = "Xb7hH8MSUJpSbSDYk0k2"
VOICES = [voice_entry(DEFAULT_VOICE, "George"), voice_entry(ALICE, "Alice")]
TEXT = "Hello from Hatchery."


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeElevenLabs]:
    server = FakeElevenLabs()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def fresh(fake: FakeElevenLabs) -> Iterator[None]:
    """Each test starts with an empty fake and ends with it having seen nothing that breaks
    ElevenLabs' protocol."""
    fake.reset()
    fake.voices = list(VOICES)
    yield
    assert fake.violations == []


async def no_input(key: str) -> bytes:
    raise AssertionError(f"ElevenLabs reads no input file (asked for {key})")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider(
    http: httpx.AsyncClient, fake: FakeElevenLabs, key: str = ELEVENLABS_KEY, clock: Any = None
) -> ElevenLabsProvider:
    upstream = Upstream(
        "elevenlabs",
        http,
        fake.base,
        {"xi-api-key": key},
        timeout=UPSTREAM_TIMEOUT,
        max_bytes=10 * 1024 * 1024,
    )
    if clock is None:
        return ElevenLabsProvider(upstream, InputFiles(no_input))
    return ElevenLabsProvider(upstream, InputFiles(no_input), clock=clock)


def speech_job(text: str = TEXT, route: str | None = None, **options: Any) -> Job:
    values = {
        "voice_id": None,
        "language": None,
        "speed": None,
        "replacements": [],
        "auto_expand": False,
        **options,
    }
    return _job("text-to-speech", text, route, values)


def sound_job(
    prompt: str = "rain on a tin roof", seconds: float = 3.0, influence: float | None = None
) -> Job:
    return _job("generate-sound-effect", prompt, None, {"seconds": seconds, "influence": influence})


def _job(tool: str, prompt: str, route: str | None, options: dict[str, Any], n: int = 1) -> Job:
    params = ToolParams(tool=tool, prompt=prompt, num_outputs=n, options=tuple(options.items()))
    job = Job.for_tool("vg_exec_test", params)
    return dataclasses.replace(job, routes={"elevenlabs": route} if route else {})


def outputs(job: Job, n: int) -> Job:
    return dataclasses.replace(job, num_outputs=n)


def el(vendor_id: str) -> str:
    return f"vg_voic_el_{vendor_id}"


# -- text to speech ------------------------------------------------------------------------------


async def test_speech_sends_each_output_as_one_request_and_reads_the_mp3s_and_their_cost(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    job = speech_job(
        "Hatchery reads the README aloud.",
        voice_id=el(ALICE),
        speed=1.5,
        language="es",
        replacements=[["README", "read me"], ["aloud", "out loud"], ["Hatch", "nope"]],
    )
    result = await provider(http, fake).submit(outputs(job, 3))
    calls = fake.seen("POST", "/v1/text-to-speech/")
    assert [c.path for c in calls] == [f"/v1/text-to-speech/{ALICE}"] * 3
    assert {c.query for c in calls} == {"output_format=mp3_44100_128"}
    assert calls[0].json() == {
        "text": "Hatchery reads the read me out loud.",  # whole words only: "Hatch" stays
        "model_id": "eleven_multilingual_v2",
        "voice_settings": {"speed": 1.2},  # 1.5 clamped to ElevenLabs' 0.7-1.2
    }  # no language_code: multilingual_v2 takes none
    assert [a.extension for a in result.artifacts] == ["mp3"] * 3
    assert all(a.seconds and 0.8 < a.seconds < 1.3 for a in result.artifacts)
    assert result.artifacts[0].description == f"elevenlabs eleven_multilingual_v2, voice {ALICE}"
    usage = result.usage
    assert usage["route"] == "eleven_multilingual_v2"
    assert len(set(usage["upstream_ids"])) == 3
    assert usage["characters"] == 3 * len("Hatchery reads the read me out loud.")


async def test_no_voice_is_the_default_premade_voice_and_no_speed_keeps_the_voice_settings(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    await provider(http, fake).submit(speech_job())
    (call,) = fake.seen("POST", "/v1/text-to-speech/")
    assert call.path == f"/v1/text-to-speech/{DEFAULT_VOICE}"
    assert call.json() == {"text": TEXT, "model_id": "eleven_multilingual_v2"}


@pytest.mark.parametrize(
    ("route", "language", "expanded"),
    [
        ("eleven_v3", {"language_code": "fr"}, {"apply_text_normalization": "on"}),
        ("eleven_multilingual_v2", {}, {"apply_text_normalization": "on"}),
        ("eleven_flash_v2", {}, {"apply_text_normalization": "on"}),
        ("eleven_turbo_v2_5", {"language_code": "en"}, {}),  # "on" needs Enterprise: ours
    ],
)
async def test_language_and_expansion_follow_the_model(
    http: httpx.AsyncClient,
    fake: FakeElevenLabs,
    route: str,
    language: dict[str, str],
    expanded: dict[str, str],
) -> None:
    chosen = {"eleven_flash_v2": None, "eleven_turbo_v2_5": "en"}.get(route, "fr")
    job = speech_job("It costs $100.", route, language=chosen, auto_expand=True)
    await provider(http, fake).submit(job)
    body = fake.seen("POST", "/v1/text-to-speech/")[0].json()
    text = "It costs one hundred dollars." if not expanded else "It costs $100."
    assert body == {"text": text, "model_id": route, **language, **expanded}


async def test_speech_refuses_before_sending_what_elevenlabs_cannot_speak(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    adapter = provider(http, fake)
    local = speech.voices()[0].voice_id
    assert adapter.unsupported(speech_job(voice_id=el(ALICE), speed=3.0)) is None
    assert adapter.unsupported(speech_job(voice_id=local)) == (
        f"voice {local} is a local voice; ElevenLabs speaks vg_voic_el_… voices"
    )
    assert adapter.unsupported(speech_job(route="eleven_turbo_v2", language="de")) == (
        "eleven_turbo_v2 speaks English only (language 'de')"
    )
    assert adapter.unsupported(speech_job(route="eleven_turbo_v2", language="en")) is None
    assert adapter.unsupported(speech_job("a" * 10_000)) is None
    assert adapter.unsupported(speech_job("a" * 10_001)) == (
        "eleven_multilingual_v2 speaks at most 10000 characters per request (this text: 10001)"
    )
    assert adapter.unsupported(speech_job("a" * 10_001, route="eleven_flash_v2_5")) is None
    grown = speech_job("word " * 2_000, replacements=[["word", "a longer word"]])
    assert "at most 10000 characters" in (adapter.unsupported(grown) or "")
    emptied = speech_job("uh", replacements=[["uh", " "]])
    assert adapter.unsupported(emptied) == (
        "there is no text to speak (it is empty after the replacements)"
    )
    assert fake.requests == []


# -- sound effects -------------------------------------------------------------------------------


async def test_a_sound_effect_sends_duration_and_influence_and_reads_the_mp3(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    result = await provider(http, fake).submit(outputs(sound_job(seconds=3.0, influence=0.6), 2))
    calls = fake.seen("POST", "/v1/sound-generation")
    assert len(calls) == 2 and calls[0].query == "output_format=mp3_44100_128"
    assert calls[0].json() == {
        "text": "rain on a tin roof",
        "model_id": "eleven_text_to_sound_v2",
        "duration_seconds": 3.0,
        "prompt_influence": 0.6,
    }
    assert [a.extension for a in result.artifacts] == ["mp3", "mp3"]
    assert all(a.seconds and abs(a.seconds - 3.0) < 0.3 for a in result.artifacts)
    assert result.usage == {
        "upstream_ids": result.usage["upstream_ids"],
        "route": "eleven_text_to_sound_v2",
        "characters": 2 * 60,  # the fake's character-cost for 3 s
    }
    assert len(set(result.usage["upstream_ids"])) == 2


async def test_no_influence_is_elevenlabs_default_and_the_seconds_must_be_half_to_thirty(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    adapter = provider(http, fake)
    await adapter.submit(sound_job(seconds=0.5))
    assert "prompt_influence" not in fake.seen("POST", "/v1/sound-generation")[0].json()
    assert adapter.unsupported(sound_job(seconds=30)) is None
    for seconds in (0.2, 31.0):
        assert adapter.unsupported(sound_job(seconds=seconds)) == (
            "ElevenLabs makes sound effects of 0.5 to 30 seconds"
        )


# -- what it serves, its routes ------------------------------------------------------------------


def test_it_serves_the_two_tools_and_knows_their_models(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    adapter = provider(http, fake)
    assert adapter.serves("text-to-speech") and adapter.serves("generate-sound-effect")
    for other in ("nanobanana", "veo3.1", "generate-image", "generate-avatar"):
        assert not adapter.serves(other)
    for route in (None, "eleven_v3", "eleven_flash_v2_5", "eleven_multilingual_v2"):
        assert adapter.route_problem("text-to-speech", route) is None
    assert adapter.route_problem("generate-sound-effect", None) is None
    assert adapter.route_problem("generate-sound-effect", "eleven_text_to_sound_v2") is None
    problem = adapter.route_problem("text-to-speech", "eleven_v9")
    assert problem and problem.startswith("elevenlabs has no text-to-speech model 'eleven_v9'")
    assert adapter.route_problem("generate-sound-effect", "eleven_v3")


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "kind", "said"),
    [
        ("quota", RetryableError, "HTTP 401 quota_exceeded: This request exceeds your quota"),
        ("badkey", RetryableError, "HTTP 401 invalid_api_key: Invalid API key"),
        ("voice", TerminalError, "HTTP 400 voice_not_found: A voice with the voice_id given"),
        ("invalid", TerminalError, "text: field required"),
        ("creator", TerminalError, "this voice needs a higher ElevenLabs plan"),
        ("limit", TerminalError, "HTTP 400 max_character_limit_exceeded: The text is too long"),
        ("busy", UpstreamUnreachable, "HTTP 429 concurrent_limit_exceeded"),
        ("429", UpstreamUnreachable, "HTTP 429"),
        ("500", UpstreamUnreachable, "HTTP 500"),
        ("503", UpstreamUnreachable, "HTTP 503"),
        ("drop", UpstreamUnreachable, "failed"),
        ("html", RetryableError, "not an image, video or audio file"),
    ],
)
async def test_each_error_answer_is_classified(
    http: httpx.AsyncClient, fake: FakeElevenLabs, mode: str, kind: type, said: str
) -> None:
    fake.plan("speech", mode)
    with pytest.raises(ProviderError) as caught:
        await provider(http, fake).submit(speech_job())
    assert type(caught.value) is kind
    assert said in str(caught.value)
    if mode == "busy":
        assert caught.value.retry_after == 2.0


async def test_a_hang_past_the_timeout_is_unreachable(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    fake.plan("sound", "hang")
    with pytest.raises(UpstreamUnreachable, match="did not answer"):
        await provider(http, fake).submit(sound_job())


async def test_a_wrong_key_falls_back(http: httpx.AsyncClient, fake: FakeElevenLabs) -> None:
    with pytest.raises(RetryableError) as caught:
        await provider(http, fake, key="sk_wrong").submit(sound_job())
    assert type(caught.value) is RetryableError and "invalid_api_key" in str(caught.value)


async def test_one_failed_output_fails_the_execution(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    fake.plan("speech", "ok", "voice")
    with pytest.raises(TerminalError, match="voice_not_found"):
        await provider(http, fake).submit(outputs(speech_job(voice_id=el(ALICE)), 3))


def test_an_error_is_read_by_its_code_whatever_its_status() -> None:
    legacy = {"detail": {"status": "quota_exceeded", "message": "No credits left."}}
    quota = vendor_error(TerminalError("elevenlabs: 400", status=400, body=legacy))
    assert type(quota) is RetryableError  # by its code, whatever the status
    assert str(quota) == "elevenlabs: HTTP 400 quota_exceeded: No credits left."
    current = {"detail": {"type": "x", "code": "max_character_limit_exceeded", "message": "Too"}}
    refused = vendor_error(RetryableError("elevenlabs: 401", status=401, body=current))
    assert type(refused) is TerminalError and "max_character_limit_exceeded" in str(refused)
    listed = {"detail": [{"loc": ["body", "text"], "msg": "field required", "type": "missing"}]}
    invalid = TerminalError("elevenlabs: 422", status=422, body=listed)
    assert vendor_error(invalid) is invalid  # no code: as Upstream classified it
    timeout = UpstreamUnreachable("elevenlabs: POST /x did not answer within 2s")
    assert vendor_error(timeout) is timeout


# -- voices --------------------------------------------------------------------------------------


def many(count: int) -> list[dict[str, Any]]:
    return [voice_entry(f"voice{i:04d}", f"Voice {i}") for i in range(count)]


async def test_voices_are_paged_and_mapped_to_our_fields(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    fake.voices = [
        voice_entry(
            "Fr1", "Camille", labels={"gender": "female", "language": "fr"}, description="Warm."
        ),
        voice_entry(
            "Gb1",
            "Oliver",
            labels={"gender": "male", "accent": "british"},
            verified_languages=[{"language": "en", "model_id": "eleven_v3", "locale": "en-GB"}],
        ),
        voice_entry("Old1", "Legacy", labels={}, is_legacy=True),
        {"name": "no id"},
        *many(227),
    ]
    voices = await provider(http, fake).voices()
    pages = fake.seen("GET", "/v2/voices")
    assert [p.query for p in pages] == [
        "page_size=100",
        "page_size=100&next_page_token=page-100",
        "page_size=100&next_page_token=page-200",
    ]
    assert len(voices) == 230  # the entry without a voice_id is left out
    camille, oliver, legacy = voices[:3]
    assert dataclasses.asdict(camille) == {
        "voice_id": "vg_voic_el_Fr1",
        "language_code": "fr-FR",
        "display_name": "Camille",
        "gender": "FEMALE",
        "accent": None,
        "description": "Warm.",
        "supports_direct_tool_execution": True,
        "supports_all_languages": True,
        "is_deprecated": False,
    }
    assert (oliver.language_code, oliver.gender, oliver.accent) == ("en-GB", "MALE", "british")
    assert (legacy.language_code, legacy.gender, legacy.is_deprecated) == ("en-US", "NEUTRAL", True)
    assert voices[3].voice_id == "vg_voic_el_voice0000"


async def test_at_most_five_hundred_voices_are_listed(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    fake.voices = many(650)
    voices = await provider(http, fake).voices()
    assert len(voices) == 500 and len(fake.seen("GET", "/v2/voices")) == 5


async def test_voices_are_kept_ten_minutes_and_a_failure_serves_the_last_list(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    clock = Clock()
    adapter = provider(http, fake, clock=clock)
    first = await adapter.voices()
    clock.now += VOICES_FRESH - 1
    assert await adapter.voices() == first
    assert len(fake.seen("GET", "/v2/voices")) == 1
    fake.voices = many(3)
    clock.now += 2
    assert [v.display_name for v in await adapter.voices()] == ["Voice 0", "Voice 1", "Voice 2"]
    clock.now += VOICES_FRESH
    fake.plan("voices", "500")
    fake.voices = many(4)
    assert len(await adapter.voices()) == 3  # stale, but served
    assert len(await adapter.voices()) == 3  # and not asked for again at once
    assert len(fake.seen("GET", "/v2/voices")) == 3
    clock.now += VOICES_RETRY
    assert len(await adapter.voices()) == 4
    assert len(fake.seen("GET", "/v2/voices")) == 4


async def test_callers_at_once_share_one_fetch(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    adapter = provider(http, fake)
    lists = await asyncio.gather(*(adapter.voices() for _ in range(5)))
    assert all(listed == lists[0] for listed in lists) and len(lists[0]) == 2
    assert len(fake.seen("GET", "/v2/voices")) == 1


async def test_a_voice_list_failure_with_nothing_cached_raises(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    fake.plan("voices", "quota")
    with pytest.raises(RetryableError, match="quota_exceeded"):
        await provider(http, fake).voices()


# -- the tts-voices resource and the voiceId of a request ----------------------------------------


async def test_the_listed_voices_follow_the_tools_providers(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    adapter = provider(http, fake)
    providers: dict[str, Any] = {"local": object(), "elevenlabs": adapter}
    local = [v.voice_id for v in speech.voices()]
    both = await speaking_voices(("elevenlabs", "local"), providers)
    assert [v.voice_id for v in both] == [el(DEFAULT_VOICE), el(ALICE), *local]
    assert [v.voice_id for v in await speaking_voices(("local",), providers)] == local
    alone = await speaking_voices(("elevenlabs",), providers)
    assert [v.voice_id for v in alone] == [el(DEFAULT_VOICE), el(ALICE)]
    without: dict[str, Any] = {"local": object()}  # no ElevenLabs key: no such provider
    no_key = await speaking_voices(("elevenlabs", "local"), without)
    assert [v.voice_id for v in no_key] == local


async def test_an_elevenlabs_list_failure_leaves_the_local_voices_or_is_unavailable(
    http: httpx.AsyncClient, fake: FakeElevenLabs
) -> None:
    providers: dict[str, Any] = {"elevenlabs": provider(http, fake)}
    fake.plan("voices", "503", "503")
    listed = await speaking_voices(("elevenlabs", "local"), providers)
    assert [v.voice_id for v in listed] == [v.voice_id for v in speech.voices()]
    with pytest.raises(ServiceUnavailable, match="the ElevenLabs voices cannot be listed now"):
        await speaking_voices(("elevenlabs",), providers)


def test_a_request_may_name_an_elevenlabs_voice_only_where_elevenlabs_speaks() -> None:
    local = speech.voices()[0].voice_id
    assert _voice(el(ALICE), True) == el(ALICE)
    assert _voice(local, True) == _voice(local, False) == local
    assert _voice(None, True) is None
    with pytest.raises(NotFound, match=f"no voice {el(ALICE)}"):
        _voice(el(ALICE), False)
    with pytest.raises(NotFound):
        _voice("vg_voic_el_not-an-id!", True)
