"""Service settings: one object, read from ``CDSRULES_*`` environment variables or ``.env``.

Only adapters (the app and the CLI) import this; the engine core takes plain arguments.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_RULES = PROJECT_ROOT / "rules"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDSRULES_", env_file=".env", extra="ignore")

    rules_dir: Path = Field(default=BUNDLED_RULES, description="Rule pack to compile at start-up.")
    database_url: str = Field(default="sqlite:///./var/cdsrules.db", description="Audit store (SQLAlchemy URL).")
    audit_store_inputs: bool = Field(default=False, description="Keep the full input document (contains PHI).")
    audit_hash_key: str = Field(
        default="development-only-key", description="Key for the keyed hash of patient ids in the audit log."
    )
    log_level: str = "INFO"
    max_body_bytes: int = Field(default=1_000_000, description="Requests larger than this are refused (413).")
