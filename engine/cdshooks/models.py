"""CDS Hooks 2.0.1 wire models: lenient for what EHRs send, strict for what we send back.

Requests allow unknown fields (the spec reserves ``extension`` and clients add their own) and only
insist on what the service cannot work without. Responses are built only from these models and
serialised with ``exclude_none``, and their validators enforce the spec's invariants: summary under
140 characters, ``selectionBehavior`` whenever there are suggestions, a ``display`` on every
override reason, and no empty strings or arrays.

The access token in ``fhirAuthorization`` is a ``SecretStr``: it cannot end up in a log line, a
repr or an audit document by accident.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

HOOKS = ("patient-view", "order-select", "order-sign")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The JSON object as sent: optional fields omitted, never null."""
        return self.model_dump(mode="json", exclude_none=True)


# ---- requests ---------------------------------------------------------------------------------


class FhirAuthorization(_Lenient):
    access_token: SecretStr = Field(min_length=1)
    token_type: str | None = None  # spec: REQUIRED "Bearer"; tolerated when absent
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None


class HookRequest(_Lenient):
    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1)
    fhirServer: str | None = Field(default=None, pattern=r"^https?://\S+$")
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_with_token(self) -> HookRequest:
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("fhirServer is required when fhirAuthorization is provided")
        return self


class PatientViewContext(_Lenient):
    patientId: str = Field(min_length=1)
    userId: str | None = None
    encounterId: str | None = None


class OrderSignContext(PatientViewContext):
    draftOrders: dict[str, Any]


class OrderSelectContext(OrderSignContext):
    selections: list[str] = Field(min_length=1)


CONTEXTS: dict[str, type[PatientViewContext]] = {
    "patient-view": PatientViewContext,
    "order-select": OrderSelectContext,
    "order-sign": OrderSignContext,
}


# ---- feedback ---------------------------------------------------------------------------------


class FeedbackCoding(_Lenient):
    code: str = Field(min_length=1)
    system: str = Field(min_length=1)
    display: str | None = None


class OverrideReason(_Lenient):
    reason: FeedbackCoding | None = None
    userComment: str | None = None


class AcceptedSuggestion(_Lenient):
    id: str = Field(min_length=1)


class FeedbackItem(_Lenient):
    card: str = Field(min_length=1)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = Field(default=None, validate_default=True)
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str = Field(min_length=1)

    @field_validator("acceptedSuggestions")
    @classmethod
    def _accepted_names_suggestions(
        cls, v: list[AcceptedSuggestion] | None, info: ValidationInfo
    ) -> list[AcceptedSuggestion] | None:
        if info.data.get("outcome") == "accepted" and not v:
            raise ValueError("required (and not empty) when outcome is 'accepted'")
        return v

    @field_validator("outcomeTimestamp")
    @classmethod
    def _iso8601(cls, v: str) -> str:
        try:
            dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError("outcomeTimestamp must be an ISO 8601 date-time, e.g. 2020-12-11T00:00:00Z") from exc
        return v

    def stored(self) -> dict[str, Any]:
        """The spec-defined fields only; unknown client additions are not stored."""
        return self.model_dump(
            mode="json",
            exclude_none=True,
            include={"card", "outcome", "acceptedSuggestions", "overrideReason", "outcomeTimestamp"},
        )


class FeedbackRequest(_Lenient):
    feedback: list[FeedbackItem] = Field(min_length=1)


# ---- responses --------------------------------------------------------------------------------


class Coding(_Strict):
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    display: str | None = Field(default=None, min_length=1)


class Source(_Strict):
    label: str = Field(min_length=1)
    url: str | None = Field(default=None, pattern=r"^https?://")
    topic: Coding | None = None


class Action(_Strict):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resourceId: str | None = None

    @model_validator(mode="after")
    def _resource_for_writes(self) -> Action:
        if self.type in ("create", "update") and not self.resource:
            raise ValueError(f"a {self.type} action carries the whole resource")
        return self


class Suggestion(_Strict):
    label: str = Field(min_length=1)
    uuid: str = Field(min_length=1)
    isRecommended: bool | None = None
    actions: list[Action] | None = Field(default=None, min_length=1)


class Link(_Strict):
    """CDS Hooks 2.0 Link: here, the explanation page of the decision (``type: absolute``)."""

    label: str = Field(min_length=1)
    url: str = Field(min_length=1)
    type: Literal["absolute", "smart"]


class Card(_Strict):
    uuid: str = Field(min_length=1)
    summary: str = Field(min_length=1, max_length=139)
    detail: str | None = Field(default=None, min_length=1)
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = Field(default=None, min_length=1)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = Field(default=None, min_length=1)
    links: list[Link] | None = Field(default=None, min_length=1)
    # the rule (id, version) behind the card, never sent: the audit log keeps it so feedback on the
    # card can be counted against the rule (override analytics)
    _rule: tuple[str, str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _spec_invariants(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when a card has suggestions")
        if self.overrideReasons and any(not r.display for r in self.overrideReasons):
            raise ValueError("every override reason needs a display")
        return self


class CdsResponse(_Strict):
    cards: list[Card]

    def wire(self) -> dict[str, Any]:
        return {"cards": [c.wire() for c in self.cards]}  # an empty list is the spec's "nothing to say"


class ServiceDescription(_Strict):
    hook: str
    title: str
    description: str
    id: str
    prefetch: dict[str, str]
