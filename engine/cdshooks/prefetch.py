"""Work out, key by key, what FHIR data this call has, and fetch what the EHR left out.

The four cases the spec distinguishes are kept apart because they mean different things to a
clinician:

- key present with data: use it (a paginated Bundle is completed from ``fhirServer``);
- key present as ``null``, or an empty Bundle: the EHR looked and found nothing; do not refetch;
- key absent: the EHR did not prefetch it; read it from ``fhirServer`` when we were given one;
- an ``OperationOutcome`` (bare, or the only content of a Bundle), or a failed read: unavailable,
  and the card says which check could not be done.

Only the Patient is required; without it there is nothing to dose for, and the call gets 412.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from engine.cdshooks.discovery import CHECKS_NEEDING, PATIENT_TOKEN
from engine.cdshooks.errors import CdsHooksError, Issue
from engine.cdshooks.fhirclient import Fetched, FhirFetcher, next_link
from engine.fhir.bundle import Unpacked, is_bundle, only_informational, outcome_summary, unpack

State = Literal["provided", "fetched", "none-found", "unavailable"]
_FEMALE_ONLY = frozenset({"pregnancy", "breastfeeding"})


@dataclass
class KeyData:
    key: str
    state: State
    found: Unpacked = field(default_factory=Unpacked)
    note: str | None = None  # for unavailable keys: why; otherwise partial-data remarks


@dataclass
class PrefetchResult:
    keys: dict[str, KeyData]
    renal_max_age_days: int | None = None  # how old a renal lab may be and still be used (the call's setting)
    # Medications read from fhirServer for references nothing else resolved (engine.cdshooks.medrefs),
    # and why each reference not read was not
    referenced: Unpacked = field(default_factory=Unpacked)
    reference_notes: dict[str, str] = field(default_factory=dict)

    def resources(self) -> list[dict[str, Any]]:
        return [r for kd in self.keys.values() for r in kd.found.resources] + self.referenced.resources

    def full_urls(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for kd in self.keys.values():
            out.update(kd.found.full_urls)
        out.update(self.referenced.full_urls)
        return out

    def unavailable(self, sex: str | None = None) -> list[str]:
        """'what could not be checked (why)' for every key whose data we could not get.

        For a patient recorded as male the pregnancy and breastfeeding keys are left out: the pack
        asks for pregnancy status only for female, other or unknown sex (each drug's
        ``*.pregnancy.unknown`` rule), and a card on every order for a man saying his pregnancy or
        breastfeeding status could not be read would be noise. Other or unknown sex keeps them.
        """
        skip = _FEMALE_ONLY if sex == "male" else frozenset()
        return [
            f"{CHECKS_NEEDING.get(kd.key, kd.key)}: {kd.note}"
            for kd in self.keys.values()
            if kd.state == "unavailable" and kd.key not in skip
        ]

    def remarks(self) -> list[str]:
        return [f"{kd.key}: {kd.note}" for kd in self.keys.values() if kd.state != "unavailable" and kd.note]

    def summary(self) -> dict[str, str]:
        return {k: kd.state for k, kd in self.keys.items()}


# Keys whose absence needs no card of its own: without liver tests hepatic function stays unknown,
# and the engine names it as missing for exactly the drugs whose rules need it (not for baclofen).
SUPPLEMENTARY = frozenset({"bilirubin", "ast", "alt", "albumin", "inr", "child_pugh"})


def fill(template: str, patient_id: str) -> str:
    """The template as a request path: the patient id filled in, every query value percent-encoded.

    ``code=http://loinc.org|98979-8`` is sent as ``code=http%3A%2F%2Floinc.org%7C98979-8``; commas
    stay, as they separate the values a FHIR search ORs together.
    """
    filled = template.replace(PATIENT_TOKEN, patient_id)
    path, sep, query = filled.partition("?")
    if not sep:
        return quote(path, safe="/")
    params = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        params.append(f"{name}{eq}{quote(value, safe=',')}")
    return f"{quote(path, safe='/')}?{'&'.join(params)}"


def classify(key: str, value: Any, state: State) -> KeyData:
    """Sort one prefetched or fetched value into data, nothing found, or unavailable."""
    if value is None:
        return KeyData(key, "none-found")
    if not isinstance(value, dict | list):
        return KeyData(key, "unavailable", note="the value is not a FHIR resource")
    found = unpack(value)
    if found.resources:
        note = f"the FHIR server also reported {outcome_summary(found.outcomes)}" if found.outcomes else None
        return KeyData(key, state, found, note)
    if found.outcomes and not only_informational(found.outcomes):
        return KeyData(key, "unavailable", found, f"the EHR reported {outcome_summary(found.outcomes)}")
    if isinstance(value, dict) and not is_bundle(value) and not found.outcomes:
        return KeyData(key, "unavailable", note=f"unexpected {value.get('resourceType') or 'object'}")
    return KeyData(key, "none-found", found)


def _from_fetch(key: str, got: Fetched) -> KeyData:
    if got.document is None:
        if got.not_found and key != "patient":
            return KeyData(key, "none-found", note=got.error)
        return KeyData(key, "unavailable", note=got.error)
    kd = classify(key, got.document, "fetched")
    if got.note:
        kd.note = "; ".join(n for n in (kd.note, got.note) if n)
    return kd


async def resolve(
    templates: dict[str, str],
    prefetch: dict[str, Any] | None,
    patient_id: str,
    fetcher: FhirFetcher | None,
) -> PrefetchResult:
    """Every template key resolved to data, nothing, or unavailable; raises 412 without a Patient."""
    given = prefetch or {}
    keys: dict[str, KeyData] = {}
    to_fetch: dict[str, str] = {}
    for key, template in templates.items():
        if key in given:
            value, note = given[key], None
            if fetcher is not None and isinstance(value, dict) and is_bundle(value) and next_link(value):
                value, note = await fetcher.complete(value)  # a paginated prefetch (allowed since 2.0.1's successor)
            keys[key] = classify(key, value, "provided")
            keys[key].note = "; ".join(n for n in (keys[key].note, note) if n) or None
            if _only_withdrawn(keys[key]):
                # an EHR that ignored the status filter sent only a withdrawn result for the one
                # _count=1 slot: the valid result before it is read from fhirServer, or said missing
                if fetcher is not None:
                    to_fetch[key] = fill(template, patient_id)
                else:
                    keys[key] = KeyData(
                        key, "unavailable", note="only an entered-in-error or cancelled result was sent"
                    )
        elif fetcher is not None:
            to_fetch[key] = fill(template, patient_id)
        elif key in SUPPLEMENTARY:
            keys[key] = KeyData(key, "none-found")  # only refines a fact the engine reports missing itself
        else:
            keys[key] = KeyData(key, "unavailable", note="not prefetched, and no fhirServer to read it from")
    if fetcher is not None and to_fetch:
        for key, got in (await fetcher.read_many(to_fetch)).items():
            keys[key] = _from_fetch(key, got)
    result = PrefetchResult({k: keys[k] for k in templates})
    _require_patient(result, patient_id)
    _drop_other_patients(result, patient_id)
    return result


_WITHDRAWN = {"entered-in-error", "cancelled"}


def _only_withdrawn(kd: KeyData) -> bool:
    found = kd.found.of_type("Observation")
    return bool(found) and len(found) == len(kd.found.resources) and all(o.get("status") in _WITHDRAWN for o in found)


_SUBJECT_FIELDS = ("subject", "patient")


def _other_patient(resource: dict[str, Any], patient_id: str) -> str | None:
    """The reference when ``resource`` is about another patient than ``patient_id``, else None.

    Only a literal ``Patient/<id>`` reference (relative or absolute) can be compared; a bundle-local
    ``urn:uuid:`` reference is left as it is, since nothing here says it is someone else.
    """
    for name in _SUBJECT_FIELDS:
        ref = resource.get(name)
        target = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(target, str) or "Patient/" not in target:
            continue
        rid = target.rsplit("Patient/", 1)[1].split("/_history", 1)[0]
        if rid and rid != patient_id:
            return target
    return None


def _drop_other_patients(result: PrefetchResult, patient_id: str) -> None:
    """Leave out every resource whose subject names another patient, saying so on the key."""
    for kd in result.keys.values():
        if kd.key == "patient":
            continue
        kept: list[tuple[dict[str, Any], str | None]] = []
        dropped: list[tuple[dict[str, Any], str | None]] = []
        for r in kd.found.resources:
            other = _other_patient(r, patient_id)
            (dropped if other else kept).append((r, other))
        if not dropped:
            continue
        kd.found = Unpacked(resources=[r for r, _ in kept], full_urls=kd.found.full_urls, outcomes=kd.found.outcomes)
        refs = ", ".join(sorted({str(o) for _, o in dropped}))
        what = ", ".join(f"{r.get('resourceType')}/{r.get('id')}" for r, _ in dropped[:3])
        kd.note = "; ".join(
            n
            for n in (kd.note, f"left out {len(dropped)} resource(s) ({what}) about {refs}, not Patient/{patient_id}")
            if n
        )
        if not kept and kd.state in ("provided", "fetched"):
            kd.state = "unavailable"


def _require_patient(result: PrefetchResult, patient_id: str) -> None:
    kd = result.keys.get("patient")
    if kd is not None and kd.found.of_type("Patient"):
        got = kd.found.of_type("Patient")[0].get("id")
        if isinstance(got, str) and got and got != patient_id:
            raise CdsHooksError(
                412,
                [
                    Issue(
                        "prefetch.patient",
                        f"the Patient resource is Patient/{got}, but context.patientId is {patient_id!r}: "
                        "the prefetch is for another patient",
                        "conflict",
                    )
                ],
            )
        return
    if kd is None:
        why = "no patient prefetch template"
    elif kd.state == "none-found":
        why = "the EHR sent null for it (no such patient)"
    else:
        why = kd.note or "unavailable"
    raise CdsHooksError(
        412,
        [
            Issue(
                "prefetch.patient",
                f"Patient/{patient_id} is required and could not be obtained: {why}",
                "incomplete",
            )
        ],
    )
