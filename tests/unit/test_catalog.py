"""Tests for hatchery.domain.catalog: the built-in catalog, pricing and TOML parse errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hatchery.domain.catalog import Catalog, CatalogError, Model, PriceRule, Quote
from hatchery.domain.tasks import TaskType

IMAGE_MODEL = """
[models.pic]
type = "image"
price_per_output = "0.0250"
providers = ["first", "second"]
"""


@pytest.fixture(scope="module")
def default() -> Catalog:
    return Catalog.load()


def test_default_catalog_names_in_file_order(default: Catalog) -> None:
    assert default.names == ("nanobanana", "nanobanana-pro", "veo3.1")


@pytest.mark.parametrize(
    ("name", "kind", "micros"),
    [
        ("nanobanana", TaskType.IMAGE, 10_000),
        ("nanobanana-pro", TaskType.IMAGE, 16_000),
        ("veo3.1", TaskType.VIDEO, 80_000),
    ],
)
def test_default_catalog_models(default: Catalog, name: str, kind: TaskType, micros: int) -> None:
    model = default.get(name)
    rules = (PriceRule((("resolution", "4k"),), 32_000),) if name == "nanobanana-pro" else ()
    assert model == Model(name, kind, micros, ("local",), price_rules=rules)
    assert model is not None
    assert model.is_video is (kind is TaskType.VIDEO)


def test_get_unknown_model_is_none(default: Catalog) -> None:
    assert default.get("dall-e") is None
    assert default.get("NANOBANANA") is None


@pytest.mark.parametrize(("num_outputs", "expected"), [(1, 10_000), (2, 20_000), (4, 40_000)])
def test_image_price_is_per_output_and_ignores_duration(
    default: Catalog, num_outputs: int, expected: int
) -> None:
    model = default.models["nanobanana"]
    assert model.price(num_outputs=num_outputs, duration=5) == expected
    assert model.price(num_outputs=num_outputs, duration=60) == expected


def test_pro_image_price(default: Catalog) -> None:
    assert default.models["nanobanana-pro"].price(num_outputs=3, duration=5) == 48_000


@pytest.mark.parametrize(
    ("resolution", "unit_price"), [("1k", 16_000), ("2k", 16_000), ("4k", 32_000)]
)
def test_pro_images_cost_twice_as_much_at_4k(
    default: Catalog, resolution: str, unit_price: int
) -> None:
    quote = default.models["nanobanana-pro"].quote({"num_outputs": 2, "resolution": resolution})
    assert quote == Quote(2, "image", unit_price)
    assert quote.total_micros == 2 * unit_price
    plain = default.models["nanobanana"].quote({"num_outputs": 2, "resolution": resolution})
    assert plain == Quote(2, "image", 10_000)


def test_the_first_matching_price_rule_wins_and_video_is_priced_per_second() -> None:
    catalog = Catalog.parse(
        """
[models.clip]
type = "video"
price_per_second = "0.10"
[[models.clip.prices]]
when = { resolution = "4k", duration = 8 }
price_per_second = "0.40"
[[models.clip.prices]]
when = { resolution = "4k" }
price_per_second = "0.30"
"""
    )
    clip = catalog.models["clip"]
    assert clip.quote({"num_outputs": 2, "duration": 8, "resolution": "4k"}) == Quote(
        16, "second", 400_000
    )
    assert clip.quote({"num_outputs": 1, "duration": 4, "resolution": "4k"}).total_micros == (
        4 * 300_000
    )
    assert clip.price(num_outputs=1, duration=4, resolution="1k") == 400_000


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('price_per_output = "0.1"', "models.pic.prices[0].when must be a table"),
        ('when = { quality = "hd" }\nprice_per_output = "0.1"', "prices can depend on"),
        ('when = { resolution = true }\nprice_per_output = "0.1"', "string or a whole number"),
        ('when = { resolution = "4k" }', "prices[0].price_per_output must be a dollar amount"),
        ('when = { resolution = "4k" }\nprice_per_output = "-1"', "cannot be negative"),
    ],
)
def test_a_bad_price_rule_names_its_place(rule: str, message: str) -> None:
    text = (
        f'[models.pic]\ntype = "image"\nprice_per_output = "0.05"\n[[models.pic.prices]]\n{rule}\n'
    )
    with pytest.raises(CatalogError, match=re.escape(message)):
        Catalog.parse(text)


def test_prices_must_be_a_list_of_tables() -> None:
    text = '[models.pic]\ntype = "image"\nprice_per_output = "0.05"\nprices = "cheap"\n'
    with pytest.raises(CatalogError, match=re.escape("[[models.pic.prices]]")):
        Catalog.parse(text)


@pytest.mark.parametrize(
    ("num_outputs", "duration", "expected"),
    [(1, 1, 80_000), (1, 5, 400_000), (2, 5, 800_000), (4, 60, 19_200_000)],
)
def test_video_price_is_per_second_per_output(
    default: Catalog, num_outputs: int, duration: int, expected: int
) -> None:
    model = default.models["veo3.1"]
    assert model.price(num_outputs=num_outputs, duration=duration) == expected


def test_parse_a_custom_catalog() -> None:
    catalog = Catalog.parse(
        IMAGE_MODEL
        + """
[models.clip]
type = "video"
price_per_second = "$1.5"
"""
    )
    assert catalog.names == ("pic", "clip")
    assert catalog.models["pic"] == Model("pic", TaskType.IMAGE, 25_000, ("first", "second"))
    # providers default to the local provider
    assert catalog.models["clip"] == Model("clip", TaskType.VIDEO, 1_500_000, ("local",))


def test_numeric_toml_prices_are_accepted() -> None:
    catalog = Catalog.parse('[models.m]\ntype = "image"\nprice_per_output = 0.02\n')
    assert catalog.models["m"].unit_price_micros == 20_000


def test_load_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(IMAGE_MODEL, encoding="utf-8")
    catalog = Catalog.load(path)
    assert catalog.names == ("pic",)
    assert catalog.models["pic"].price(num_outputs=2, duration=5) == 50_000


def test_catalog_error_is_a_value_error() -> None:
    assert issubclass(CatalogError, ValueError)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[models.x\ntype = 'image'", "catalog is not valid TOML"),
        ("", "catalog has no [models.NAME] tables"),
        ("[other]\na = 1", "catalog has no [models.NAME] tables"),
        ("[models]", "catalog has no [models.NAME] tables"),
        ('models = "x"', "catalog has no [models.NAME] tables"),
        ('[models]\nx = "image"', "models.x must be a table"),
        ('[models.x]\nprice_per_output = "1"', 'models.x.type must be "image" or "video"'),
        ('[models.x]\ntype = "audio"\nprice_per_output = "1"', "models.x.type must be"),
        ('[models.x]\ntype = 3\nprice_per_output = "1"', "models.x.type must be"),
        ('[models.x]\ntype = "image"', "models.x.price_per_output must be a dollar amount"),
        (
            '[models.x]\ntype = "video"\nprice_per_output = "1"',
            "models.x.price_per_second must be a dollar amount",
        ),
        (
            '[models.x]\ntype = "image"\nprice_per_output = "cheap"',
            "models.x.price_per_output must be a dollar amount",
        ),
        (
            '[models.x]\ntype = "image"\nprice_per_output = "0.0000001"',
            "models.x.price_per_output must be a dollar amount",
        ),
        (
            '[models.x]\ntype = "image"\nprice_per_output = "1"\nproviders = []',
            "models.x.providers must be a non-empty list of names",
        ),
        (
            '[models.x]\ntype = "image"\nprice_per_output = "1"\nproviders = "local"',
            "models.x.providers must be a non-empty list of names",
        ),
        (
            '[models.x]\ntype = "image"\nprice_per_output = "1"\nproviders = ["local", 2]',
            "models.x.providers must be a non-empty list of names",
        ),
    ],
)
def test_parse_errors_name_the_model_and_key(text: str, fragment: str) -> None:
    with pytest.raises(CatalogError) as info:
        Catalog.parse(text)
    assert fragment in str(info.value)


def test_error_names_the_bad_model_among_good_ones() -> None:
    text = IMAGE_MODEL + '\n[models.broken]\ntype = "video"\nprice_per_second = "x"\n'
    with pytest.raises(CatalogError, match=r"models\.broken\.price_per_second"):
        Catalog.parse(text)


def test_bad_file_on_disk_raises_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text("not = [toml", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid TOML"):
        Catalog.load(path)


@pytest.mark.parametrize("value", ['["image"]', '{kind = "image"}', "3"])
def test_a_type_that_is_not_a_string_is_a_catalog_error(value: str) -> None:
    with pytest.raises(CatalogError, match=r"models\.x\.type"):
        Catalog.parse(f'[models.x]\ntype = {value}\nprice_per_output = "0.01"\n')


def test_a_negative_price_is_a_catalog_error() -> None:
    with pytest.raises(CatalogError, match="negative"):
        Catalog.parse('[models.x]\ntype = "image"\nprice_per_output = "-0.01"\n')


def test_unknown_providers_are_refused_by_name() -> None:
    catalog = Catalog.parse(
        '[models.x]\ntype = "image"\nprice_per_output = "0.01"\nproviders = ["local", "gemini"]\n'
    )
    catalog.check_providers({"local", "gemini"})
    with pytest.raises(CatalogError, match=r"models\.x\.providers .*gemini; available: local"):
        catalog.check_providers({"local"})


def test_an_unreadable_catalog_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read the catalog file"):
        Catalog.load(tmp_path / "missing.toml")


def test_the_built_in_catalog_uses_local_when_no_vendor_has_a_key() -> None:
    catalog = Catalog.load(None, ())
    assert {m.providers for m in catalog.models.values()} == {("local",)}


def test_the_built_in_catalog_routes_to_the_vendors_with_keys_in_order() -> None:
    every = Catalog.load(None, {"gemini", "veo", "fal", "replicate"})
    assert every.models["nanobanana"].providers == ("gemini", "fal", "replicate")
    assert every.models["nanobanana-pro"].providers == ("gemini", "fal", "replicate")
    assert every.models["veo3.1"].providers == ("veo", "fal", "replicate")
    some = Catalog.load(None, {"replicate", "fal"})
    assert some.models["veo3.1"].providers == ("fal", "replicate")
    assert "local" not in {p for m in some.models.values() for p in m.providers}


def test_a_model_no_keyed_vendor_makes_is_left_out_rather_than_made_locally() -> None:
    catalog = Catalog.parse(
        '[models.a]\ntype = "image"\nprice_per_output = "0.01"\nproviders = ["gemini"]\n'
        '[models.b]\ntype = "image"\nprice_per_output = "0.01"\nproviders = ["fal"]\n'
    )
    assert catalog.routed({"fal"}).names == ("b",)


def test_a_catalog_file_naming_a_vendor_without_its_key_says_which_key() -> None:
    catalog = Catalog.parse(
        '[models.x]\ntype = "image"\nprice_per_output = "0.01"\nproviders = ["local", "fal"]\n'
    )
    with pytest.raises(CatalogError, match=r"models\.x\.providers .* fal needs HATCHERY_FAL_KEY"):
        catalog.check_providers({"local"}, {"fal": "HATCHERY_FAL_KEY"})


def test_an_upstream_table_routes_each_provider_and_resolves_workflow_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "catalog.toml").write_text(
        '[models.sdxl]\ntype = "image"\nprice_per_output = "0.002"\n'
        'providers = ["comfyui", "openai"]\n'
        'upstream = { comfyui = "workflows/sdxl.json", openai = "sdxl-turbo" }\n'
        '[tools.upscale-image]\nprice_per_output = "0.01"\nproviders = ["fal", "local"]\n'
        'upstream = { fal = "fal-ai/esrgan" }\n'
    )
    catalog = Catalog.load(tmp_path / "catalog.toml")
    assert dict(catalog.models["sdxl"].routes) == {
        "comfyui": str(tmp_path / "workflows" / "sdxl.json"),  # next to the catalog file
        "openai": "sdxl-turbo",
    }
    assert dict(catalog.tools["upscale-image"].routes) == {"fal": "fal-ai/esrgan"}
    assert dict(Catalog.load().tools["upscale-image"].routes) == {}


@pytest.mark.parametrize(
    ("upstream", "error"),
    [
        ('upstream = "fal-ai/esrgan"', r"models\.m\.upstream must be a table"),
        ('upstream = { fal = "" }', r"models\.m\.upstream\.fal must be a non-empty string"),
        ("upstream = { fal = 3 }", r"models\.m\.upstream\.fal must be a non-empty string"),
        (
            'upstream = { replicate = "a/b" }',
            r"models\.m\.upstream\.replicate: replicate is not in models\.m\.providers",
        ),
    ],
)
def test_a_bad_upstream_table_is_refused_with_its_key(upstream: str, error: str) -> None:
    text = (
        f'[models.m]\ntype = "image"\nprice_per_output = "0.01"\nproviders = ["fal"]\n{upstream}\n'
    )
    with pytest.raises(CatalogError, match=error):
        Catalog.parse(text)


def test_a_price_rule_may_name_the_provider_asked_first() -> None:
    catalog = Catalog.parse(
        '[models.m]\ntype = "image"\nprice_per_output = "0.01"\n'
        '[tools.upscale-image]\nprice_per_output = "0.01"\nproviders = ["fal", "local"]\n'
        '[[tools.upscale-image.prices]]\nwhen = { provider = "fal" }\nprice_per_output = "0.10"\n'
    )
    tool = catalog.tools["upscale-image"]
    assert tool.price(num_outputs=2, provider="fal") == 200_000
    assert tool.price(num_outputs=2, provider="local") == 20_000


def test_the_built_in_tools_cost_more_on_a_vendor_than_locally() -> None:
    routed = Catalog.load(None, {"fal", "replicate", "elevenlabs"})
    clip = routed.tools["generate-video-clip"]
    assert clip.price(num_outputs=1, duration=8, provider="fal") == 8 * 500_000
    assert clip.price(num_outputs=1, duration=8, provider="local") == 8 * 100_000
    speech = routed.tools["text-to-speech"]
    assert speech.price(num_outputs=1, prompt="x" * 1000, provider="elevenlabs") == 200_000


def test_a_price_rule_naming_a_provider_the_entry_does_not_list_is_refused() -> None:
    text = (
        '[models.m]\ntype = "image"\nprice_per_output = "0.01"\nproviders = ["fal"]\n'
        '[[models.m.prices]]\nwhen = { provider = "replicate" }\nprice_per_output = "0.02"\n'
    )
    with pytest.raises(
        CatalogError, match=r"models\.m\.prices\[0\]\.when\.provider: replicate is not in"
    ):
        Catalog.parse(text)
