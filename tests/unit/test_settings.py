"""Tests for hatchery.settings. Every test passes an explicit environ mapping: os.environ is
never read, so the machine's own HATCHERY_* variables cannot leak in."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hatchery.settings import Settings, SettingsError


def test_defaults() -> None:
    s = Settings()
    assert s.host == "127.0.0.1"
    assert s.port == 8000
    assert s.data_dir == Path(".hatchery")
    assert s.database_url == f"sqlite+aiosqlite:///{Path('.hatchery') / 'hatchery.db'}"
    assert s.public_url == "http://127.0.0.1:8000"
    assert s.catalog is None
    assert s.moderation_denylist is None
    assert s.allow_private_urls is False
    assert 4 <= s.workers <= 32
    assert s.outputs_dir == Path(".hatchery") / "outputs"


def test_from_empty_env_equals_defaults() -> None:
    assert Settings.from_env({}) == Settings()


def test_variables_of_other_prefixes_are_ignored() -> None:
    assert Settings.from_env({"PORT": "1", "HOST": "example.com"}) == Settings()


def test_database_url_follows_data_dir(tmp_path: Path) -> None:
    s = Settings.from_env({"HATCHERY_DATA_DIR": str(tmp_path)})
    assert s.data_dir == tmp_path
    assert isinstance(s.data_dir, Path)
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path}/hatchery.db"
    assert s.database_url.startswith("sqlite+aiosqlite:////")  # absolute path: four slashes
    assert s.outputs_dir == tmp_path / "outputs"


def test_data_dir_given_as_string_becomes_path() -> None:
    s = Settings(data_dir="somewhere")  # type: ignore[arg-type]
    assert s.data_dir == Path("somewhere")


def test_explicit_database_url_is_kept() -> None:
    url = "postgresql+asyncpg://u:p@db/hatchery"
    s = Settings.from_env({"HATCHERY_DATABASE_URL": url, "HATCHERY_DATA_DIR": "/srv/x"})
    assert s.database_url == url


def test_public_url_follows_host_and_port() -> None:
    s = Settings.from_env({"HATCHERY_HOST": "0.0.0.0", "HATCHERY_PORT": "9100"})
    assert s.host == "0.0.0.0"
    assert s.port == 9100
    assert s.public_url == "http://0.0.0.0:9100"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://media.example.com/", "https://media.example.com"),
        ("https://media.example.com///", "https://media.example.com"),
        ("https://example.com/base/", "https://example.com/base"),
        ("https://example.com", "https://example.com"),
    ],
)
def test_public_url_trailing_slash_is_stripped(given: str, expected: str) -> None:
    assert Settings.from_env({"HATCHERY_PUBLIC_URL": given}).public_url == expected
    assert Settings(public_url=given).public_url == expected


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        (" on ", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("Off", False),
    ],
)
def test_bools(raw: str, value: bool) -> None:
    s = Settings.from_env({"HATCHERY_ALLOW_PRIVATE_URLS": raw})
    assert s.allow_private_urls is value


def test_ints_and_floats() -> None:
    s = Settings.from_env(
        {
            "HATCHERY_PORT": "8123",
            "HATCHERY_WORKERS": "0",
            "HATCHERY_MAX_ATTEMPTS": "9",
            "HATCHERY_REFERENCE_MAX_BYTES": "1048576",
            "HATCHERY_LEASE_SECONDS": "2.5",
            "HATCHERY_POLL_INTERVAL": "0.1",
            "HATCHERY_WEBHOOK_BACKOFF_MAX": "60",
        }
    )
    assert (s.port, s.workers, s.max_attempts, s.reference_max_bytes) == (8123, 0, 9, 1_048_576)
    assert isinstance(s.port, int)
    assert s.lease_seconds == 2.5
    assert s.poll_interval == 0.1
    assert s.webhook_backoff_max == 60.0
    assert isinstance(s.webhook_backoff_max, float)


def test_paths_and_strings() -> None:
    s = Settings.from_env(
        {
            "HATCHERY_CATALOG": "/etc/hatchery/catalog.toml",
            "HATCHERY_MODERATION_DENYLIST": "deny.txt",
            "HATCHERY_LOG_LEVEL": "debug",
        }
    )
    assert s.catalog == Path("/etc/hatchery/catalog.toml")
    assert s.moderation_denylist == Path("deny.txt")
    assert s.log_level == "debug"


def test_empty_variable_means_unset() -> None:
    s = Settings.from_env({"HATCHERY_PORT": "", "HATCHERY_ALLOW_PRIVATE_URLS": ""})
    assert s.port == 8000
    assert s.allow_private_urls is False


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("HATCHERY_PORT", "eighty"),
        ("HATCHERY_PORT", "80.5"),
        ("HATCHERY_WORKERS", "many"),
        ("HATCHERY_LEASE_SECONDS", "soon"),
        ("HATCHERY_ALLOW_PRIVATE_URLS", "maybe"),
        ("HATCHERY_ALLOW_PRIVATE_URLS", "2"),
    ],
)
def test_bad_values_raise_settings_error_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: raw})
    assert name in str(info.value)
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"HATCHERY_WORKERS": "-1"}, "HATCHERY_WORKERS"),
        ({"HATCHERY_LEASE_SECONDS": "0"}, "HATCHERY_LEASE_SECONDS"),
        ({"HATCHERY_LEASE_SECONDS": "-3"}, "HATCHERY_LEASE_SECONDS"),
        ({"HATCHERY_KEY_CACHE_SECONDS": "-1"}, "HATCHERY_KEY_CACHE_SECONDS"),
        ({"HATCHERY_KEY_CACHE_SECONDS": "61"}, "HATCHERY_KEY_CACHE_SECONDS"),
        ({"HATCHERY_KEY_CACHE_SECONDS": "nan"}, "HATCHERY_KEY_CACHE_SECONDS"),
    ],
)
def test_out_of_range_values_raise_settings_error(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_the_key_cache_lifetime_may_be_zero_and_defaults_to_one_second() -> None:
    assert Settings.from_env({}).key_cache_seconds == 1.0
    assert Settings.from_env({"HATCHERY_KEY_CACHE_SECONDS": "0"}).key_cache_seconds == 0.0


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_overrides_win_over_the_environment() -> None:
    env = {"HATCHERY_PORT": "9000", "HATCHERY_HOST": "10.0.0.1", "HATCHERY_LOG_LEVEL": "debug"}
    s = Settings.from_env(env, port=9500, host="192.168.0.2")
    assert s.port == 9500
    assert s.host == "192.168.0.2"
    assert s.log_level == "debug"  # not overridden: the environment still applies
    assert s.public_url == "http://192.168.0.2:9500"


def test_none_overrides_are_ignored() -> None:
    env = {"HATCHERY_PORT": "9000", "HATCHERY_ALLOW_PRIVATE_URLS": "1"}
    s = Settings.from_env(env, port=None, allow_private_urls=None, data_dir=None)
    assert s.port == 9000
    assert s.allow_private_urls is True
    assert s.data_dir == Path(".hatchery")


def test_false_override_is_not_ignored() -> None:
    s = Settings.from_env({"HATCHERY_ALLOW_PRIVATE_URLS": "1"}, allow_private_urls=False)
    assert s.allow_private_urls is False


def test_string_overrides_are_coerced_and_validated() -> None:
    s = Settings.from_env({}, port="8443", data_dir="/srv/data")
    assert s.port == 8443
    assert s.data_dir == Path("/srv/data")
    with pytest.raises(SettingsError, match="HATCHERY_PORT"):
        Settings.from_env({}, port="not-a-port")


def test_override_public_url_slash_stripped() -> None:
    s = Settings.from_env({"HATCHERY_PUBLIC_URL": "https://a.example"}, public_url="https://b/")
    assert s.public_url == "https://b"


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HATCHERY_PORT", "99999"),
        ("HATCHERY_PORT", "0"),
        ("HATCHERY_LEASE_SECONDS", "nan"),
        ("HATCHERY_POLL_INTERVAL", "inf"),
        ("HATCHERY_WEBHOOK_TIMEOUT", "0"),
    ],
)
def test_out_of_range_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HATCHERY_STORAGE_URL", "/var/files"),
        ("HATCHERY_STORAGE_URL", "s3://"),
        ("HATCHERY_STORAGE_URL", "gs://bucket"),
        ("HATCHERY_TEMPORARY_FILE_HOURS", "12"),  # the contract keeps them 24 hours at least
        ("HATCHERY_TEMPORARY_FILE_HOURS", "nan"),
        ("HATCHERY_SIGNED_URL_SECONDS", "30"),
        ("HATCHERY_SIGNED_URL_SECONDS", "700000"),  # past what S3 presigns: 7 days
        ("HATCHERY_UPLOAD_URL_SECONDS", "0"),
        ("HATCHERY_MAX_UPLOAD_BYTES", "0"),
        ("HATCHERY_JANITOR_INTERVAL", "-1"),
    ],
)
def test_file_settings_out_of_range_are_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_storage_settings_that_are_taken() -> None:
    s = Settings.from_env(
        {
            "HATCHERY_STORAGE_URL": "s3://my-bucket/prod/hatchery",
            "HATCHERY_STORAGE_ENDPOINT": "https://acct.r2.cloudflarestorage.com",
            "HATCHERY_TEMPORARY_FILE_HOURS": "48",
        }
    )
    assert s.storage_url == "s3://my-bucket/prod/hatchery" and s.temporary_file_hours == 48.0
    assert Settings().storage_url == "" and Settings().max_upload_bytes == 512 * 1024 * 1024
