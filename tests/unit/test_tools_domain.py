"""Tools as the engine knows them: the catalog's ``[tools.NAME]``, their quotes, the params a
task stores, and the watermark a request gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from hatchery.api.videogen.auth import Group, group_limits
from hatchery.api.videogen.requests import ToolRequests
from hatchery.domain.catalog import Catalog, CatalogError
from hatchery.domain.rates import parse_rates
from hatchery.domain.tasks import TaskType
from hatchery.domain.tools import (
    BY_TOOL_TYPE,
    TOOLS,
    InputFile,
    ToolParams,
    is_execution_id,
    new_execution_id,
)
from hatchery.errors import NotAllowed
from hatchery.providers.base import Job
from hatchery.settings import Settings, SettingsError
from hatchery.store.accounts import Account

MODELS = '[models.m]\ntype = "image"\nprice_per_output = "0.01"\nproviders = ["local"]\n'


def test_the_built_in_catalog_prices_every_tool_and_routes_it_by_the_vendor_keys() -> None:
    catalog = Catalog.load()
    assert set(catalog.tools) == set(TOOLS)
    assert {tool.providers for tool in catalog.tools.values()} == {("local",)}  # no keys
    assert catalog.tools["text-to-speech"].unit == "character"
    assert catalog.tools["generate-video-clip"].unit == "second"
    assert catalog.tools["generate-image"].unit == "output"
    routed = Catalog.load(None, {"fal"})
    assert routed.tools["generate-image"].providers == ("fal",)  # local stands in for none
    assert routed.tools["upscale-video"].providers == ("fal",)
    assert "generate-image" not in routed.models  # the Egg models stay apart
    voices = Catalog.load(None, {"elevenlabs"})
    assert voices.tools["text-to-speech"].providers == ("elevenlabs",)
    assert voices.tools["upscale-image"].providers == ("local",)  # no vendor of its has a key
    assert set(voices.models) == set(catalog.models)  # made locally: no key for the models
    assert {m.providers for m in voices.models.values()} == {("local",)}
    both = Catalog.load(None, {"fal", "replicate", "elevenlabs"})
    assert both.tools["remove-image-background"].providers == ("fal", "replicate")
    assert both.tools["generate-sound-effect"].providers == ("elevenlabs", "fal")
    selfhosted = Catalog.load(None, {"comfyui", "openai"})  # named in a catalog file only
    assert {m.providers for m in selfhosted.everything()} == {("local",)}
    assert catalog.for_task("generate-image", TaskType.TOOL) is catalog.tools["generate-image"]
    assert catalog.for_task("generate-image", TaskType.IMAGE) is None


@pytest.mark.parametrize(
    ("tool", "params", "units"),
    [
        ("generate-image", {"num_outputs": 3}, 3),
        ("generate-video-clip", {"num_outputs": 2, "duration": 6}, 12),
        ("text-to-speech", {"num_outputs": 2, "prompt": "hello"}, 10),
        ("upscale-video", {"num_outputs": 1, "duration": 0}, 1),  # at least one second
    ],
)
def test_a_tool_is_quoted_in_its_unit(tool: str, params: dict[str, object], units: int) -> None:
    model = Catalog.load().tools[tool]
    quote = model.quote(params)
    assert quote.units == units and quote.total_micros == units * model.unit_price_micros


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[tools.paint-house]\nprice_per_output = "1"\n', "no such tool"),
        ('[tools.generate-image]\nproviders = ["local"]\n', "exactly one of"),
        (
            '[tools.generate-image]\nprice_per_output = "1"\nprice_per_second = "1"\n',
            "exactly one of",
        ),
        ('[tools.generate-image]\nprice_per_output = "-1"\n', "cannot be negative"),
        ("[tools]\ngenerate-image = 3\n", "must be a table"),
    ],
)
def test_a_bad_tools_table_is_refused_by_name(table: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        Catalog.parse(MODELS + table)


def test_a_catalog_file_without_tools_gets_the_built_in_ones(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(MODELS)
    catalog = Catalog.load(path)
    assert list(catalog.models) == ["m"] and set(catalog.tools) == set(TOOLS)
    path.write_text(MODELS + '[tools.upscale-image]\nprice_per_output = "0.5"\n')
    assert list(Catalog.load(path).tools) == ["upscale-image"]  # as written


def test_tool_types_and_execution_ids() -> None:
    assert TOOLS["remove-video-background"].tool_type == "REMOVE_VIDEO_BACKGROUND"
    assert BY_TOOL_TYPE["TEXT_TO_SPEECH"].output.value == "audio"
    made = new_execution_id()
    assert made.startswith("vg_exec_") and is_execution_id(made)
    assert not is_execution_id("vg_file_abcdefghijkl") and not is_execution_id("vg_exec_a b")


def test_params_survive_their_json_and_make_the_job() -> None:
    audio = InputFile("vg_file_x", "uploads/vg_file_x", "AUDIO", "audio/mpeg", 3.2)
    params = ToolParams(
        tool="generate-avatar",
        num_outputs=2,
        duration=4,
        inputs=(("audio", audio),),
        options=(("presenter_id", "vg_pres_a"),),
        watermark=True,
        unit="second",
    )
    again = ToolParams.of(params.to_json())
    assert again == params
    job = Job.from_params("vg_exec_1", "ignored", "ignored", params.to_json())
    assert (job.tool, job.kind, job.num_outputs) == ("generate-avatar", "video", 2)
    assert job.input("audio") == [audio] and job.options["presenter_id"] == "vg_pres_a"


def _account(*flags: str) -> Account:
    return Account("acct_1", "a@example.com", "active", 0, 0, None, flags=frozenset(flags))


@pytest.mark.parametrize(
    ("auto", "flags", "mode", "marked"),
    [
        ("account", (), "AUTO", True),
        ("account", ("no-watermark",), "AUTO", False),
        ("always", ("no-watermark",), "AUTO", True),
        ("never", (), "AUTO", False),
        ("never", (), "VIDEO_GEN", True),
        ("account", ("no-watermark",), "NONE", False),
        ("account", (), None, False),  # a tool without the field: audio
    ],
)
def test_the_watermark_a_request_gets(
    auto: str, flags: tuple[str, ...], mode: str | None, marked: bool
) -> None:
    requests = ToolRequests(files=None, settings=Settings(watermark_auto=auto))  # type: ignore[arg-type]
    assert requests.watermark(_account(*flags), mode) is marked


def test_none_without_the_flag_is_refused_with_what_it_needs() -> None:
    requests = ToolRequests(files=None, settings=Settings())  # type: ignore[arg-type]
    with pytest.raises(NotAllowed) as refused:
        requests.watermark(_account(), "NONE")
    assert refused.value.reason == "watermark_removal_not_allowed"
    assert refused.value.requirement["type"] == "purchase_add_on"


def test_group_limits_come_from_the_contract_unless_a_setting_changes_them() -> None:
    default = group_limits("")
    assert [str(item) for item in default[Group.TOOLS]] == [str(parse_rates("500/hour")[0])]
    changed = group_limits("tools=3/hour, execution=20000/hour")
    assert changed[Group.TOOLS][0].amount == 3 and changed[Group.EXECUTION][0].amount == 20000
    assert changed[Group.CANCEL][0].amount == 250  # the others as the contract says
    with pytest.raises(SettingsError, match="no group 'tool'"):
        group_limits("tool=3/hour")
    with pytest.raises(SettingsError, match="HATCHERY_VIDEOGEN_RATE_LIMITS"):
        group_limits("tools=many")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("watermark_auto", "sometimes", "WATERMARK_AUTO must be one of account, always, never"),
        ("watermark_text", "  ", "WATERMARK_TEXT"),
        ("local_parallel", -1, "LOCAL_PARALLEL"),
    ],
)
def test_tool_settings_out_of_range_are_refused_by_name(
    name: str, value: object, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings(**{name: value})  # type: ignore[arg-type]
