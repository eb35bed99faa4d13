"""Turn a deployer's licensed terminology into our terminology files: FHIR ValueSet expansions and
RxNorm releases.

Hospitals export value sets from VSAC or their terminology server as FHIR R4 ``ValueSet`` resources
with an ``expansion``, and license the full RxNorm release (RRF files). Both are converted here into
the file kinds the loader reads (``schemas.terminology.ValueSetFile`` / ``RxNormFile``), with the
source (URL, OID, expansion version, release) carried along so provenance survives the import.
Nothing here writes into the serving pack; ``engine.terminology_tools.commands`` puts the result through
the gate first.

RRF layout and relationship semantics follow the RxNorm Technical Documentation (NLM,
https://www.nlm.nih.gov/research/umls/rxnorm/docs/techdoc.html; e.g. version 2014-3,
https://www.nlm.nih.gov/research/umls/rxnorm/docs/2014/rxnorm_doco_full_2014-3.html, sections
12.1 RXNCONSO, 12.4 RXNREL, 12.5 RXNSAT):

- RXNCONSO.RRF, 18 fields: RXCUI|LAT|TS|LUI|STT|SUI|ISPREF|RXAUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|
  SRL|SUPPRESS|CVF (each line ends with a '|'). Only SAB=RXNORM atoms are RxNorm's normalised names;
  SUPPRESS O (obsolete), Y (suppressed by the editors) and E (suppressible, by the editors) are
  not current names and are skipped.
- RXNREL.RRF, 16 fields: RXCUI1|RXAUI1|STYPE1|REL|RXCUI2|RXAUI2|STYPE2|RELA|RUI|SRUI|SAB|SL|DIR|RG|
  SUPPRESS|CVF. "The relationship which the SECOND concept (RXCUI2) HAS TO the FIRST (RXCUI1)": a
  row ``A|..|B|..|has_ingredient`` reads "B has_ingredient A". Both directions are published.
- RXNSAT.RRF, 13 fields: RXCUI|LUI|SUI|RXAUI|STYPE|CODE|ATUI|SATUI|ATN|SAB|ATV|SUPPRESS|CVF; the NDCs
  RxNorm asserts are ATN=NDC with SAB=RXNORM (11-digit, normalised by NLM).

Ingredients of a product, by the documented relationship chain: SCD -consists_of-> SCDC
-has_ingredient-> IN (and SCD -has_ingredients-> MIN for multi-ingredient forms, whose
-has_part-> INs are the parts); SBD -tradename_of-> SCD; GPCK/BPCK -contains-> SCD (BPCK also
-tradename_of-> GPCK). A precise ingredient (PIN) -form_of-> its IN.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from schemas.terminology import (
    SYSTEM_URIS,
    MemberGroup,
    RxIngredient,
    RxNormFile,
    RxProduct,
    SetSource,
    ValueSetFile,
)

IMPORTED_DIR = Path("terminology") / "imported"
RXNORM_FILE = "rxnorm.json"
Domain = Literal["condition", "medication"]

_SYSTEM_BY_URI = {uri: name for name, uri in SYSTEM_URIS.items()}
_ID_OK = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class ImportError_(ValueError):
    """Input that cannot be imported; the message names the file and the JSON path or line."""


# ---- FHIR R4 ValueSet (with expansion) -> ValueSetFile ---------------------------------------------


def value_set_id(name: str) -> str:
    """A lowercase-dashed id from ``ValueSet.name`` ('OpioidMedications' -> 'opioid-medications')."""
    # FHIR names are CamelCase by convention; a name with spaces is taken word by word
    words = name if re.search(r"\s", name) else re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    slug = re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")
    return slug


def _need(obj: Mapping[str, Any], key: str, path: str, kind: type, where: str) -> Any:
    if key not in obj:
        raise ImportError_(f"{where}: {path}.{key} is missing")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise ImportError_(f"{where}: {path}.{key} must be a non-empty {kind.__name__}")
    return value


def _contains(items: Any, path: str, where: str) -> Iterator[tuple[str, str, str, str]]:
    """Every (json path, system uri, code, display) of an expansion, nested ``contains`` flattened."""
    if not isinstance(items, list):
        raise ImportError_(f"{where}: {path} must be an array")
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise ImportError_(f"{where}: {here} must be an object")
        abstract = item.get("abstract") is True
        if not abstract or "code" in item:
            system = _need(item, "system", here, str, where)
            code = _need(item, "code", here, str, where)
            display = item.get("display")
            if display is not None and not isinstance(display, str):
                raise ImportError_(f"{where}: {here}.display must be a string")
            if item.get("inactive") is not True:
                yield here, system, code, display or ""
        if "contains" in item:
            yield from _contains(item["contains"], f"{here}.contains", where)


def value_set_from_fhir(data: Any, where: str, vs_id: str | None, domain: Domain) -> ValueSetFile:
    """A ``ValueSetFile`` from a parsed FHIR R4 ValueSet; ``where`` names the input in errors."""
    if not isinstance(data, dict):
        raise ImportError_(f"{where}: $ must be a JSON object (a FHIR ValueSet resource)")
    if data.get("resourceType") != "ValueSet":
        raise ImportError_(f"{where}: $.resourceType is {data.get('resourceType')!r}, expected 'ValueSet'")
    expansion = data.get("expansion")
    if not isinstance(expansion, dict):
        raise ImportError_(
            f"{where}: $.expansion is missing: export the value set expanded "
            "(VSAC: $expand; a terminology server: ValueSet/$expand)"
        )
    if "contains" not in expansion:
        raise ImportError_(f"{where}: $.expansion.contains is missing (an empty expansion imports nothing)")
    name = data.get("name") if isinstance(data.get("name"), str) else None
    title = data.get("title") if isinstance(data.get("title"), str) else None
    the_id = vs_id or (value_set_id(name) if name else "")
    if not the_id or not _ID_OK.match(the_id):
        raise ImportError_(f"{where}: value set id {the_id!r} is not lowercase-dashed; pass --id")
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for path, uri, code, display in _contains(expansion["contains"], "$.expansion.contains", where):
        system = _SYSTEM_BY_URI.get(uri.rstrip("/"))
        if system is None:
            known = ", ".join(sorted(SYSTEM_URIS.values()))
            raise ImportError_(f"{where}: {path}.system {uri!r} is not a code system the engine reads ({known})")
        if domain == "condition" and system not in ("snomed", "icd10cm"):
            raise ImportError_(f"{where}: {path}.system is {system}; a condition value set holds SNOMED CT/ICD-10-CM")
        if domain == "medication" and system not in ("rxnorm", "ndc"):
            raise ImportError_(f"{where}: {path}.system is {system}; a medication value set holds RxNorm/NDC")
        if (system, code) not in seen:
            seen.add((system, code))
            groups[system].append((code, display))
    if not groups:
        raise ImportError_(f"{where}: $.expansion.contains holds no active code")
    oid = None
    identifiers = data.get("identifier") or []
    if not isinstance(identifiers, list):
        raise ImportError_(f"{where}: $.identifier must be an array")
    for ident in identifiers:
        value = ident.get("value") if isinstance(ident, dict) else None
        if isinstance(value, str) and value.startswith("urn:oid:"):
            oid = value.removeprefix("urn:oid:")
    url = data.get("url") if isinstance(data.get("url"), str) else None
    if oid is None and url and "/ValueSet/" in url:  # VSAC canonical URLs end in the OID
        tail = url.rsplit("/", 1)[-1]
        oid = tail if re.match(r"^[0-2](\.[0-9]+)+$", tail) else None
    version = expansion.get("timestamp")
    vs_version = data.get("version")
    label = title or name or the_id
    source = SetSource(
        id="imported",
        label=f"{label} (FHIR ValueSet expansion)",
        url=url,
        oid=oid,
        version=" ".join(str(v) for v in (vs_version, version) if v) or None,
        note=f"imported with cdsrules terminology import from {Path(where).name}",
    )
    members = [MemberGroup(source="imported", system=s, codes=codes) for s, codes in sorted(groups.items())]
    return ValueSetFile(
        kind="value-set", id=the_id, title=label, domain=domain, sources=[source], members=members, ingredients=[]
    )


def read_value_set(path: Path, vs_id: str | None, domain: Domain) -> ValueSetFile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImportError_(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ImportError_(f"{path}: not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise ImportError_(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    return value_set_from_fhir(data, str(path), vs_id, domain)


def value_set_yaml(vs: ValueSetFile) -> str:
    data = vs.model_dump(mode="json", exclude_defaults=True)
    data = {"kind": vs.kind, **data}
    for group in data.get("members", []):
        group["codes"] = [list(c) for c in group["codes"]]
    return "# Written by `cdsrules terminology import valueset`; re-import rather than edit.\n" + yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=120
    )


# ---- RxNorm release (RRF) -> RxNormFile -------------------------------------------------------------

CONSO_FIELDS, REL_FIELDS, SAT_FIELDS = 18, 16, 13
INGREDIENT_TTYS = frozenset({"IN", "PIN", "MIN"})
PRODUCT_TTYS = frozenset({"SCD", "SBD", "GPCK", "BPCK"})
_NOT_CURRENT = frozenset({"O", "Y", "E"})


@dataclass
class _Release:
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # rxcui -> (tty, name)
    rel: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))  # (cui, rela) -> cuis
    ndc: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def _rows(path: Path, width: int) -> Iterator[tuple[int, list[str]]]:
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ImportError_(f"{path}: cannot read: {exc.strerror}") from exc
    with handle:
        try:
            yield from _split_rows(path, width, handle)
        except UnicodeDecodeError as exc:
            raise ImportError_(f"{path}: not UTF-8 text (RRF files are UTF-8): {exc.reason}") from exc


def _split_rows(path: Path, width: int, lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line:
            continue
        cols = line.split("|")
        if cols and cols[-1] == "":
            cols.pop()  # every RRF line ends with the delimiter
        if len(cols) != width:
            raise ImportError_(f"{path}:{n}: {len(cols)} fields, an {path.name} row has {width}")
        yield n, cols


def _read_release(folder: Path) -> _Release:
    r = _Release()
    conso = folder / "RXNCONSO.RRF"
    for n, c in _rows(conso, CONSO_FIELDS):
        rxcui, sab, tty, name, suppress = c[0], c[11], c[12], c[14], c[16]
        if not rxcui.isdigit():
            raise ImportError_(f"{conso}:{n}: RXCUI {rxcui!r} is not a number")
        if sab != "RXNORM" or suppress in _NOT_CURRENT:
            continue
        if tty in INGREDIENT_TTYS or tty in PRODUCT_TTYS or tty in ("SCDC", "SBDC"):
            r.names.setdefault(rxcui, (tty, name))
    for _, c in _rows(folder / "RXNREL.RRF", REL_FIELDS):
        cui1, cui2, rela, sab, suppress = c[0], c[4], c[7], c[10], c[14]
        if sab == "RXNORM" and suppress not in _NOT_CURRENT and cui1 and cui2:
            r.rel[(cui2, rela)].add(cui1)  # "cui2 rela cui1"
    sat = folder / "RXNSAT.RRF"
    if sat.exists():
        for _, c in _rows(sat, SAT_FIELDS):
            if c[8] == "NDC" and c[9] == "RXNORM" and c[11] not in _NOT_CURRENT:
                r.ndc[c[0]].add(c[10])
    return r


def _ingredients_of(r: _Release, cui: str, depth: int = 0) -> set[str]:
    """IN RxCUIs of a product or component, following the documented chain."""
    tty = r.names.get(cui, ("", ""))[0]
    if depth > 4:
        return set()
    if tty == "IN":
        return {cui}
    if tty == "PIN":
        return {x for x in r.rel[(cui, "form_of")] if r.names.get(x, ("",))[0] == "IN"}
    if tty == "MIN":
        return {x for x in r.rel[(cui, "has_part")] if r.names.get(x, ("",))[0] == "IN"}
    found: set[str] = set()
    if tty in ("SCDC", "SBDC"):
        for x in r.rel[(cui, "has_ingredient")] | r.rel[(cui, "has_precise_ingredient")]:
            found |= _ingredients_of(r, x, depth + 1)
    elif tty == "SCD":
        for x in r.rel[(cui, "consists_of")] | r.rel[(cui, "has_ingredients")] | r.rel[(cui, "has_ingredient")]:
            found |= _ingredients_of(r, x, depth + 1)
    elif tty == "SBD":
        for x in r.rel[(cui, "tradename_of")] | r.rel[(cui, "consists_of")]:
            found |= _ingredients_of(r, x, depth + 1)
    elif tty in ("GPCK", "BPCK"):
        for x in r.rel[(cui, "contains")] | r.rel[(cui, "tradename_of")]:
            found |= _ingredients_of(r, x, depth + 1)
    return found


def rxnorm_from_release(folder: Path, release: str | None = None) -> RxNormFile:
    """An ``RxNormFile`` from a release folder (RXNCONSO.RRF, RXNREL.RRF, optional RXNSAT.RRF)."""
    if not folder.is_dir():
        raise ImportError_(f"{folder}: not a directory (an RxNorm release's rrf/ folder)")
    for needed in ("RXNCONSO.RRF", "RXNREL.RRF"):
        if not (folder / needed).is_file():
            raise ImportError_(f"{folder}: {needed} is missing (the release's rrf/ folder holds it)")
    r = _read_release(folder)
    ingredients = [
        RxIngredient(rxcui=cui, name=name) for cui, (tty, name) in sorted(r.names.items(), key=_num) if tty == "IN"
    ]
    products: list[RxProduct] = []
    unresolved = 0
    for cui, (tty, name) in sorted(r.names.items(), key=_num):
        if tty not in PRODUCT_TTYS:
            continue
        ings = sorted(_ingredients_of(r, cui), key=int)
        if not ings:
            unresolved += 1  # a product whose chain is incomplete is left out, never guessed
            continue
        products.append(RxProduct(rxcui=cui, name=name, tty=tty, ingredients=ings, ndc=sorted(r.ndc.get(cui, ()))))
    label = f"RxNorm release {release or folder.resolve().name} (RXNCONSO/RXNREL/RXNSAT, SAB=RXNORM)"
    note = f"{unresolved} product(s) without a resolvable ingredient chain left out" if unresolved else None
    source = SetSource(
        id="rxnorm",
        label=label,
        url="https://www.nlm.nih.gov/research/umls/rxnorm/docs/rxnormfiles.html",
        version=release,
        note=note,
    )
    return RxNormFile(
        kind="rxnorm",
        release=release or folder.resolve().name,
        sources=[source],
        ingredients=ingredients,
        products=products,
    )


def _num(item: tuple[str, Any]) -> int:
    return int(item[0])


def rxnorm_json(rx: RxNormFile) -> str:
    return json.dumps(rx.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False) + "\n"


def release_from_folder(folder: Path) -> str | None:
    """The release date from a standard release folder name ('RxNorm_full_11032026' -> '2026-11-03')."""
    for part in (folder.resolve().name, folder.resolve().parent.name):
        m = re.search(r"(\d{2})(\d{2})(\d{4})$", part)
        if m:
            return f"{m.group(3)}-{m.group(1)}-{m.group(2)}"
    return None
