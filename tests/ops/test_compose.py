"""docker-compose.yml and Dockerfile, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON Schema (check-jsonschema's
vendored copy, offline), then read as data: the API command must be a real ``cdsrules serve``
invocation, its port must match the published port and the healthcheck, every ``CDSRULES_*``
variable must be a real setting, secrets must be required, and the settings it produces must pass
the start-up safety checks.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pydantic import AliasChoices

from engine.cli import app as cli_app
from engine.service.safety import unsafe_settings
from engine.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))
REQUIRED_SECRETS = {"POSTGRES_PASSWORD", "CDSRULES_AUDIT_HASH_KEY", "CDSRULES_JWT_ISSUERS"}
NOT_SETTINGS = {"PROMETHEUS_MULTIPROC_DIR"}  # read by prometheus-client itself


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _setting_env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            names |= {str(c) for c in field.validation_alias.choices}
        else:
            names.add("CDSRULES_" + name.upper())
    return names


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, enough to read our own file."""

    def sub(m: re.Match[str]) -> str:
        var, op, arg = m.group(1), m.group(2), m.group(3) or ""
        if env.get(var):
            return env[var]
        if op == ":?":
            raise KeyError(f"{var}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:[-?])([^}]*))?\}", sub, value)


def test_compose_file_validates_against_the_compose_spec() -> None:
    done = _validate(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_validator_would_catch_a_mistake(tmp_path: Path) -> None:
    broken = _compose()
    broken["services"]["api"]["depends_on"]["db"]["condition"] = "service_healty"
    broken["services"]["db"]["helthcheck"] = broken["services"]["db"].pop("healthcheck")
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert _validate(path).returncode != 0


def test_database_service_is_postgres_16_with_volume_and_healthcheck() -> None:
    data = _compose()
    db = data["services"]["db"]
    assert db["image"] == "postgres:16"
    volume = db["volumes"][0].split(":")[0]
    assert volume in data["volumes"], "a named volume, declared at top level"
    assert "pg_isready" in str(db["healthcheck"]["test"])
    api = data["services"]["api"]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"


def test_api_command_port_and_healthcheck_agree() -> None:
    api = _compose()["services"]["api"]
    command = api["command"]
    assert command[:2] == ["cdsrules", "serve"]
    serve = typer.main.get_command(cli_app).commands["serve"]  # type: ignore[attr-defined]
    known = {opt for p in serve.params for opt in p.opts}
    options = dict(zip(command[2::2], command[3::2], strict=True))
    assert set(options) <= known, f"unknown serve options {set(options) - known}"
    port = options["--port"]
    assert int(options["--workers"]) >= 2
    assert [p.split(":")[-1] for p in api["ports"]] == [port]
    assert f"127.0.0.1:{port}/readyz" in str(api["healthcheck"]["test"])


def test_every_variable_is_a_setting_and_secrets_are_required() -> None:
    api_env: dict[str, str] = _compose()["services"]["api"]["environment"]
    db_env: dict[str, str] = _compose()["services"]["db"]["environment"]
    unknown = set(api_env) - _setting_env_names() - NOT_SETTINGS
    assert not unknown, f"not settings: {unknown}"
    raw = COMPOSE.read_text()
    for secret in REQUIRED_SECRETS:
        assert re.search(r"\$\{" + secret + r":\?[^}]+\}", raw), f"{secret} must be required with a message"
    assert "${POSTGRES_PASSWORD:?" in db_env["POSTGRES_PASSWORD"]
    with pytest.raises(KeyError, match="CDSRULES_AUDIT_HASH_KEY"):
        _interpolate(api_env["CDSRULES_AUDIT_HASH_KEY"], {})


def test_compose_settings_pass_the_start_up_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _compose()
    secrets = {
        "POSTGRES_PASSWORD": "pw-123",
        "CDSRULES_AUDIT_HASH_KEY": "x" * 48,
        "CDSRULES_JWT_ISSUERS": '{"https://ehr.example.org": ["https://ehr.example.org/jwks.json"]}',
    }
    for key in [*Settings.model_fields, "DATABASE_URL"]:
        monkeypatch.delenv("CDSRULES_" + key.upper(), raising=False)
        monkeypatch.delenv(key, raising=False)
    for key, value in data["services"]["api"]["environment"].items():
        monkeypatch.setenv(key, _interpolate(str(value), secrets))
    settings = Settings(_env_file=None)
    assert settings.environment == "production"
    assert settings.database_url == "postgresql+psycopg://cdsrules:pw-123@db:5432/cdsrules"
    db = data["services"]["db"]["environment"]
    assert f"{db['POSTGRES_USER']}:" in settings.database_url and settings.database_url.endswith(db["POSTGRES_DB"])
    assert settings.audit_store_inputs is False
    host = data["services"]["api"]["command"][data["services"]["api"]["command"].index("--host") + 1]
    assert unsafe_settings(settings, host) == []


def test_dockerfile_is_slim_non_root_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*?/healthz", text, re.M | re.S)
    assert "gcc" in text  # durable-rules builds a C extension
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd is not None
    assert yaml.safe_load(cmd.group(1)) == _compose()["services"]["api"]["command"]
    command = _compose()["services"]["api"]["command"]
    port = command[command.index("--port") + 1]
    assert re.search(rf"^EXPOSE {port}$", text, re.M)


def test_dockerfile_copies_what_the_service_reads() -> None:
    text = DOCKERFILE.read_text()
    for path in ("engine", "schemas", "rules", "alembic", "alembic.ini", "pyproject.toml"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", text, re.M), path
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".env" in ignored and "var" in ignored
