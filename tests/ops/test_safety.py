"""Unsafe production settings are refused at start-up with a message that names the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.service.safety import UnsafeSettingsError, is_loopback, unsafe_settings
from engine.settings import BUNDLED_RULES, Settings
from tests.ops.server import CLI, free_port

GOOD_KEY = "k" * 48
ISSUERS = {"https://ehr.example.org": ["https://ehr.example.org/.well-known/jwks.json"]}


def _settings(**kw: object) -> Settings:
    return Settings(rules_dir=BUNDLED_RULES, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.5", "[::1]"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api.hospital.example"])
def test_network_addresses(host: str) -> None:
    assert not is_loopback(host)


def test_auth_off_on_a_network_interface_is_refused() -> None:
    problems = unsafe_settings(_settings(audit_hash_key="k" * 48), "0.0.0.0")
    assert len(problems) == 1
    assert "CDSRULES_JWT_ISSUERS" in problems[0] and "0.0.0.0" in problems[0]
    assert unsafe_settings(_settings(), "127.0.0.1") == []
    assert unsafe_settings(_settings(jwt_issuers=ISSUERS, audit_hash_key="k" * 48), "0.0.0.0") == []


def test_default_hash_key_is_refused_outside_development() -> None:
    assert unsafe_settings(_settings(), None) == []  # a laptop may use it
    (problem,) = unsafe_settings(_settings(environment="production"), None)
    assert "CDSRULES_AUDIT_HASH_KEY" in problem and "development default" in problem
    (short,) = unsafe_settings(_settings(environment="production", audit_hash_key="short"), None)
    assert "shorter than" in short
    assert unsafe_settings(_settings(environment="production", audit_hash_key=GOOD_KEY), None) == []


def test_wildcard_cors_is_refused_in_production() -> None:
    s = _settings(environment="production", audit_hash_key=GOOD_KEY, cors_origins=["*"])
    assert any("CORS" in p for p in unsafe_settings(s, None))


def test_short_admin_token_is_refused_in_production() -> None:
    base = {"environment": "production", "audit_hash_key": GOOD_KEY}
    assert any("CDSRULES_ADMIN_TOKEN" in p for p in unsafe_settings(_settings(**base, admin_token="hunter2"), None))
    assert unsafe_settings(_settings(**base, admin_token="t" * 40), None) == []
    assert unsafe_settings(_settings(**base), None) == []  # no token: the admin endpoints are off


def test_app_refuses_to_start_with_unsafe_settings(tmp_path: Path) -> None:
    s = _settings(environment="production", database_url=f"sqlite:///{tmp_path}/a.db")
    with pytest.raises(UnsafeSettingsError, match="CDSRULES_AUDIT_HASH_KEY"), TestClient(create_app(s)):
        pass


def _serve(env: dict[str, str], host: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "CDSRULES_DATABASE_URL": f"sqlite:///{tmp_path}/a.db", "HOME": str(tmp_path)}
    return subprocess.run(
        [CLI, "serve", "--host", host, "--port", str(free_port())],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )


@pytest.mark.integration  # a `cdsrules serve` process
def test_serve_exits_nonzero_with_a_clear_message(tmp_path: Path) -> None:
    done = _serve({"CDSRULES_ENVIRONMENT": "production"}, "0.0.0.0", tmp_path)
    assert done.returncode == 2
    assert "refusing to start with unsafe settings" in done.stderr
    assert "CDSRULES_JWT_ISSUERS" in done.stderr  # the open bind
    assert "CDSRULES_AUDIT_HASH_KEY" in done.stderr  # and the default key, both at once
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "a.db").exists(), "refused before touching the database"


def test_a_network_bind_with_jwt_on_refuses_development_secrets_whatever_the_environment() -> None:
    """D13: ENVIRONMENT unset (development) must not let a 0.0.0.0 bind keep the public defaults."""
    from pydantic import SecretStr

    from engine.service.safety import unsafe_settings

    settings = Settings(
        jwt_issuers={"https://ehr.example.org": ["https://ehr.example.org/jwks.json"]},
        admin_token=SecretStr("x"),
        cors_origins=["*"],
    )
    assert settings.environment == "development"
    problems = " ".join(unsafe_settings(settings, "0.0.0.0"))
    assert "CDSRULES_AUDIT_HASH_KEY" in problems
    assert "CDSRULES_ADMIN_TOKEN" in problems
    assert "CDSRULES_CORS_ORIGINS" in problems
    assert unsafe_settings(settings, "127.0.0.1") == []  # a developer's loopback is unchanged
