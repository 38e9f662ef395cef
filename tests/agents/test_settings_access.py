"""The API token and the web address in the one settings object (docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.settings import Settings

TOKEN = "0123456789abcdef-token"


def test_the_web_server_is_loopback_and_commands_are_refused_unless_configured() -> None:
    s = Settings.from_env({})
    assert (s.web_host, s.api_token, s.api_reads) == ("127.0.0.1", None, "open")
    assert s.access_policy().token is None


def test_the_token_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(f"  {TOKEN}\n")
    assert Settings.from_env({"ASSETWATCH_API_TOKEN": TOKEN}).api_token == TOKEN
    assert Settings.from_env({"ASSETWATCH_API_TOKEN_FILE": str(tmp_path / "token")}).api_token == TOKEN
    assert Settings.from_env({}, api_token_file=tmp_path / "token").api_token == TOKEN
    assert Settings.from_env({"ASSETWATCH_API_TOKEN": TOKEN, "ASSETWATCH_API_READS": "token"}
                             ).access_policy().reads == "token"


def test_the_token_never_shows_in_a_repr() -> None:
    assert TOKEN not in repr(Settings.from_env({"ASSETWATCH_API_TOKEN": TOKEN}))


@pytest.mark.parametrize(("env", "problem"), [
    ({"ASSETWATCH_API_TOKEN": "short"}, "at least 16 characters"),
    ({"ASSETWATCH_API_TOKEN": TOKEN, "ASSETWATCH_API_TOKEN_FILE": "/x"}, "not both"),
    ({"ASSETWATCH_API_TOKEN_FILE": "/nonexistent/token"}, "cannot read the API token file"),
    ({"ASSETWATCH_API_READS": "token"}, "no token is configured"),
    ({"ASSETWATCH_API_TOKEN": TOKEN, "ASSETWATCH_API_READS": "maybe"}, "must be one of open, token"),
])
def test_an_unusable_token_configuration_is_one_clear_error(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        Settings.from_env(env)
    assert "\n" not in str(info.value)
