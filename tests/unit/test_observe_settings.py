"""The observability settings (logs' format, metrics, traces): defaults, accepted values and the
messages of the ones refused. Every test passes an explicit environ mapping."""

from __future__ import annotations

import pytest

from hatchery.settings import Settings, SettingsError


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.log_format == "text"
    assert s.metrics_token == ""
    assert (s.metrics_host, s.metrics_port) == ("127.0.0.1", 9464)
    assert s.metrics_refresh == 5.0
    assert s.otlp_endpoint == ""
    assert s.otlp_header_pairs() == {}
    assert s.trace_sample_ratio == 1.0
    assert s.service_name == "hatchery"


def test_secrets_are_not_in_the_repr() -> None:
    s = Settings.from_env(
        {"HATCHERY_METRICS_TOKEN": "tok-secret", "HATCHERY_OTLP_HEADERS": "x-key=hdr-secret"}
    )
    assert "tok-secret" not in repr(s)
    assert "hdr-secret" not in repr(s)


def test_accepted_values() -> None:
    s = Settings.from_env(
        {
            "HATCHERY_LOG_FORMAT": "json",
            "HATCHERY_METRICS_TOKEN": "tok",
            "HATCHERY_METRICS_HOST": "0.0.0.0",
            "HATCHERY_METRICS_PORT": "0",
            "HATCHERY_METRICS_REFRESH": "0.5",
            "HATCHERY_OTLP_ENDPOINT": "https://otel.example.com:4318/base",
            "HATCHERY_OTLP_HEADERS": "x-key=abc",
            "HATCHERY_TRACE_SAMPLE_RATIO": "0",
            "HATCHERY_SERVICE_NAME": "hatchery-eu",
        }
    )
    assert s.log_format == "json"
    assert s.metrics_token == "tok"
    assert (s.metrics_host, s.metrics_port, s.metrics_refresh) == ("0.0.0.0", 0, 0.5)
    assert s.otlp_endpoint == "https://otel.example.com:4318/base"
    assert s.trace_sample_ratio == 0.0
    assert s.service_name == "hatchery-eu"
    assert Settings.from_env({"HATCHERY_METRICS_PORT": "65535"}).metrics_port == 65535
    assert Settings.from_env({"HATCHERY_TRACE_SAMPLE_RATIO": "1"}).trace_sample_ratio == 1.0
    endpoint = Settings.from_env({"HATCHERY_OTLP_ENDPOINT": "http://otel-collector:4318"})
    assert endpoint.otlp_endpoint == "http://otel-collector:4318"


@pytest.mark.parametrize("value", ["xml", "JSON", "Text", " json"])
def test_log_format_is_text_or_json(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"HATCHERY_LOG_FORMAT": value})
    message = str(info.value)
    assert message.startswith("HATCHERY_LOG_FORMAT must be")
    assert '"text" or "json"' in message
    assert repr(value) in message


@pytest.mark.parametrize("value", ["-1", "65536", "100000"])
def test_metrics_port_out_of_range(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"HATCHERY_METRICS_PORT": value})
    assert str(info.value) == "HATCHERY_METRICS_PORT must be from 0 (none) to 65535"


def test_metrics_port_not_a_number() -> None:
    with pytest.raises(SettingsError, match="HATCHERY_METRICS_PORT='many' is not a valid int"):
        Settings.from_env({"HATCHERY_METRICS_PORT": "many"})


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf"])
def test_metrics_refresh_must_be_positive(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"HATCHERY_METRICS_REFRESH": value})
    assert str(info.value) == "HATCHERY_METRICS_REFRESH must be a positive number"


@pytest.mark.parametrize(
    "value",
    ["otel-collector:4318", "grpc://otel:4317", "ftp://otel", "http://", "http:// otel:4318"],
)
def test_otlp_endpoint_must_be_an_http_url(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"HATCHERY_OTLP_ENDPOINT": value})
    message = str(info.value)
    assert message.startswith("HATCHERY_OTLP_ENDPOINT must be an http(s) URL")
    assert repr(value) in message


@pytest.mark.parametrize("value", ["-0.1", "1.5", "2", "nan"])
def test_trace_sample_ratio_must_be_from_0_to_1(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"HATCHERY_TRACE_SAMPLE_RATIO": value})
    assert str(info.value) == "HATCHERY_TRACE_SAMPLE_RATIO must be from 0 to 1"


@pytest.mark.parametrize(
    ("value", "place"),
    [("novalue", 1), ("a=1,Authorization Bearer s3cret", 2), ("=1", 1), ("a=1,, = 2 ", 2)],
)
def test_malformed_otlp_headers_are_named_by_place_without_their_value(
    value: str, place: int
) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"HATCHERY_OTLP_HEADERS": value})
    assert str(info.value) == f"HATCHERY_OTLP_HEADERS: item {place} is not name=value"
    assert "s3cret" not in str(info.value)


def test_otlp_header_values_are_percent_decoded_as_otel_exporter_otlp_headers() -> None:
    settings = Settings.from_env(
        {"HATCHERY_OTLP_HEADERS": "Authorization=Basic%20dXNlcjpwdw%3D%3D"}
    )
    assert settings.otlp_header_pairs() == {"Authorization": "Basic dXNlcjpwdw=="}


@pytest.mark.parametrize(
    ("value", "pairs"),
    [
        ("a=1, b = 2", {"a": "1", "b": "2"}),
        ("a=1,,b=2,", {"a": "1", "b": "2"}),
        ("Authorization=Basic dXNlcjpwYXNz==", {"Authorization": "Basic dXNlcjpwYXNz=="}),
        ("x-empty=", {"x-empty": ""}),
        ("a=1,a=2", {"a": "2"}),
        ("", {}),
        (" , ", {}),
    ],
)
def test_otlp_header_pairs(value: str, pairs: dict[str, str]) -> None:
    assert Settings(otlp_headers=value).otlp_header_pairs() == pairs
