"""Service settings: one object, read from ``CDSRULES_*`` environment variables or ``.env``.

Only adapters (the app and the CLI) import this; the engine core takes plain arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_RULES = PROJECT_ROOT / "rules"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDSRULES_", env_file=".env", extra="ignore")

    rules_dir: Path = Field(default=BUNDLED_RULES, description="Rule pack to compile at start-up.")
    environment: Literal["development", "production"] = Field(
        default="development", description="'production' turns on the start-up safety checks (engine/ops/safety.py)."
    )
    database_url: str = Field(
        default="sqlite:///./var/cdsrules.db",
        validation_alias=AliasChoices("CDSRULES_DATABASE_URL", "DATABASE_URL"),
        description="Audit store (SQLAlchemy URL); CDSRULES_DATABASE_URL or DATABASE_URL; postgres:// means psycopg 3.",
    )
    audit_store_inputs: bool = Field(default=False, description="Keep the full input document (contains PHI).")
    sqlite_journal_mode: Literal["truncate", "wal"] = Field(
        default="truncate",
        description=(
            "SQLite audit file only: 'truncate' (rollback journal, no memory mapping: an unwritable file gives 503 "
            "and the service recovers) or 'wal' (faster commits, readers never wait for the writer, but a worker "
            "dies with SIGBUS when the mapped -shm file becomes unwritable). See docs/deployment.md."
        ),
    )
    pack_archive_dir: Path | None = Field(
        default=None,
        description="Keep every pack that serves here, by digest, so `cdsrules audit replay` can load it.",
    )
    audit_hash_key: str = Field(
        default="development-only-key", description="Key for the keyed hash of patient ids in the audit log."
    )
    migrate_on_start: bool = Field(
        default=True,
        description=(
            "Migrate the audit database when the app starts. `cdsrules serve --workers N` migrates once before "
            "forking and turns this off for its workers, so a worker (re)started during a database outage starts "
            "not-ready instead of failing to boot."
        ),
    )
    log_level: str = "INFO"
    max_body_bytes: int = Field(default=1_000_000, description="Requests larger than this are refused (413).")
    body_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="A request body must arrive within this many seconds (408: slowloris)."
    )
    keepalive_s: float = Field(
        default=75.0,
        gt=0,
        le=3600,
        description=(
            "How long an idle kept-alive connection stays open. Longer than clients' and proxies' own idle "
            "timeouts (httpx 5 s, nginx 60-75 s, most load balancers 60 s), so the client always closes first and "
            "never sends a request on a connection the server is closing."
        ),
    )

    # ---- rule authoring: hot reload and admin endpoints (engine/authoring/reload.py) ----------
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for /v1/admin/* (reload, rule status); unset means those endpoints answer 403.",
    )
    reload_rules: bool = Field(default=False, description="Watch rules_dir and hot-reload clean edits.")
    reload_interval_s: float = Field(default=1.0, gt=0, le=60, description="How often the watcher polls rules_dir.")

    # ---- CDS Hooks (engine/cdshooks; see docs/cds-hooks.md) -----------------------------------
    public_base_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL EHRs call us at; each JWT 'aud' is built from it."
    )
    jwt_issuers: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "EHR client authentication, on when not empty: allowed JWT 'iss' -> its allowed JWKS URLs ('jku'); "
            "the first URL is used when a token has no 'jku'."
        ),
    )
    jwt_algorithms: list[str] = Field(
        default=["ES384", "RS384"], description="Accepted JWT algorithms (asymmetric only; never none or HMAC)."
    )
    jwt_leeway_s: float = Field(default=30.0, ge=0, le=300, description="Clock skew allowed on exp/iat.")
    jwt_max_lifetime_s: float = Field(default=3600.0, gt=0, description="Tokens expiring later than this are refused.")
    jwks_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="Socket timeout of a JWKS fetch, and the longest a request waits for a fetch in progress.",
    )
    jwks_cache_s: float = Field(default=300.0, ge=0, description="How long a fetched JWKS is reused.")
    jwks_refresh_cooldown_s: float = Field(
        default=5.0, ge=0, description="Minimum seconds between JWKS refetches caused by an unknown 'kid'."
    )
    jwks_failure_cooldown_s: float = Field(
        default=30.0,
        ge=0,
        description="After a failed JWKS fetch, lookups needing that URL fail at once for this long (negative cache).",
    )
    jwks_max_waiters: int = Field(
        default=4, ge=1, le=64, description="Requests that may wait for one JWKS fetch in progress; more are refused."
    )
    replay_store: Literal["memory", "database"] = Field(
        default="database",
        description=(
            "Where accepted JWT ids ('jti') are remembered until they expire. 'database': in the audit database, "
            "shared by every worker and replica, so a captured token is accepted once in all of them (one small "
            "write per authenticated call; refused with 503 while the database is down, as every decision then is). "
            "'memory': per process, cheaper, but a token replays once per worker."
        ),
    )
    cors_origins: list[str] = Field(default_factory=list, description="Browser origins allowed by CORS.")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "With authentication off, Host names accepted besides loopback and CDSRULES_PUBLIC_BASE_URL's host "
            "(anything else is 421: DNS rebinding)."
        ),
    )
    fhir_timeout_s: float = Field(default=2.0, gt=0, description="Timeout of one FHIR read when prefetch is absent.")
    fhir_budget_s: float = Field(default=4.0, gt=0, description="Time for all FHIR reads of one CDS Hooks call.")
    fhir_max_body_bytes: int = Field(
        default=8_000_000,
        gt=0,
        description=(
            "Largest FHIR response read when prefetch is absent; a larger one is abandoned while streaming and "
            "reported as not read. 8 MB is far above a page of a patient's labs or medications."
        ),
    )
    renal_lab_max_age_days: int = Field(
        default=365,
        ge=0,
        description=(
            "CDS Hooks: an eGFR or creatinine older than this many days is shown as stale and treated as unknown "
            "for dosing (0: never stale). 365 follows KDIGO 2012 CKD guideline ch. 2 (assess GFR at least annually)."
        ),
    )
    cds_discovery: Literal["per-hook", "shared"] = Field(
        default="per-hook",
        description=(
            "CDS Hooks discovery: 'per-hook' lists each hook under its own service id (id-keyed clients such as "
            "the HL7 sandbox); 'shared' lists a multi-hook service once per hook under one id (CDS Hooks 2.0 "
            "Discovery allows it). Both id forms are callable in either mode."
        ),
    )

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a.lower() == "none" or a.upper().startswith("HS")]
        if bad:
            raise ValueError(f"JWT algorithms {bad} are not allowed (CDS Hooks forbids none and HMAC)")
        return v
