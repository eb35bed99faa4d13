"""Refuse to start with settings that are unsafe outside a developer's laptop.

A misconfigured clinical service should not come up at all: an unauthenticated API on a network
interface gives advice to anyone who can reach it, and the well-known development hash key makes
the "hashed" patient ids in the audit log reversible by anyone who can enumerate patient ids.
Each problem is a sentence that names the setting to change.

The secret and CORS checks apply in production and, whatever ``CDSRULES_ENVIRONMENT`` says,
whenever the server binds a non-loopback address: the default environment is ``development``,
so one forgotten variable must not give a network-exposed service with a public hash key.
"""

from __future__ import annotations

import ipaddress

from engine.errors import CdsRulesError
from engine.settings import Settings

DEV_HASH_KEY = str(Settings.model_fields["audit_hash_key"].default)
MIN_HASH_KEY_LEN = 32
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


class UnsafeSettingsError(CdsRulesError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("refusing to start with unsafe settings:\n" + "\n".join(f"  - {p}" for p in problems))


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname we cannot vouch for counts as reachable from the network


def auth_enabled(settings: Settings) -> bool:
    """Token verification is on when at least one trusted JWT issuer is configured."""
    return bool(settings.jwt_issuers)


def unsafe_settings(settings: Settings, bind_host: str | None = None) -> list[str]:
    """Every reason these settings must not serve; empty when they may."""
    problems: list[str] = []
    exposed = bind_host is not None and not is_loopback(bind_host)
    production = settings.environment != "development" or exposed
    key = settings.audit_hash_key
    if exposed and not auth_enabled(settings):
        problems.append(
            f"authentication is off (no CDSRULES_JWT_ISSUERS) but the server would bind {bind_host}, "
            "reachable from the network; configure the trusted JWT issuers or bind 127.0.0.1"
        )
    if production and key == DEV_HASH_KEY:
        problems.append(
            "CDSRULES_AUDIT_HASH_KEY is the development default, so patient ids in the audit log "
            "could be recovered by hashing candidate ids; set a random secret "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
        )
    elif production and len(key) < MIN_HASH_KEY_LEN:
        problems.append(f"CDSRULES_AUDIT_HASH_KEY is shorter than {MIN_HASH_KEY_LEN} characters; use a random secret")
    admin = settings.admin_token.get_secret_value() if settings.admin_token is not None else None
    if production and admin is not None and len(admin) < MIN_HASH_KEY_LEN:
        problems.append(f"CDSRULES_ADMIN_TOKEN is shorter than {MIN_HASH_KEY_LEN} characters; use a random secret")
    if production and "*" in settings.cors_origins:
        problems.append("CDSRULES_CORS_ORIGINS allows every origin ('*'); list the EHR origins instead")
    return problems


def check(settings: Settings, bind_host: str | None = None) -> None:
    problems = unsafe_settings(settings, bind_host)
    if problems:
        raise UnsafeSettingsError(problems)
