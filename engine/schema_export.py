"""The JSON Schema of rule files, generated from the pydantic models (schemas/rule-file.schema.json)."""

from __future__ import annotations

from typing import Any

from schemas.rulefile import RuleFile


def rule_file_schema() -> dict[str, Any]:
    schema = RuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cdsrules.invalid/schemas/rule-file.schema.json"
    schema["title"] = "cdsrules rule file"
    return schema
