"""Broken rule files give located errors, and a pack with any error never loads.

Each test breaks a lean copy of the bundled pack (``tests/authoring/packs.py``: pack.yaml, shared
derivations, terminology, baclofen's drug.yaml) and compiles it once; the full pack is compiled
once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.compiler.model import CompiledPack
from engine.compiler.monitoring import MONITORING_FILE
from engine.compiler.pack import compile_pack
from engine.errors import RuleSetError
from engine.pipeline import Rejected, prepare
from tests.authoring.packs import lean_pack

GOOD_RULE = """
drug: baclofen
rules:
  - id: baclofen.test.extra
    title: A test rule
    version: 1.0.0
    sources: [{label: Test source, section: "1.1"}]
    when:
{when}
    then:
      finding: {category: disease, severity: info, summary: test summary, detail: test detail}
"""


def rule(when: str) -> str:
    return GOOD_RULE.replace("{when}", when)


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    return lean_pack(tmp_path)


def _write(pack_dir: Path, name: str, text: str) -> Path:
    path = pack_dir / "baclofen" / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(pack_dir: Path) -> list[str]:
    result = prepare(pack_dir)
    assert isinstance(result, Rejected), "a pack with errors must not load"
    return [str(p) for p in result.errors]


def test_bundled_pack_compiles(pack: CompiledPack) -> None:
    assert "baclofen" in pack.drugs
    assert pack.digest.startswith("sha256:") and len(pack.digest) == 71


def test_lean_pack_compiles(pack_dir: Path) -> None:
    assert "baclofen" in compile_pack(pack_dir).drugs, "the broken packs below start from a clean one"


def test_compile_pack_raises_every_error_of_a_broken_pack(pack_dir: Path) -> None:
    _write(pack_dir, "a.yaml", rule("      - age_yaers: {gte: 3}"))
    _write(pack_dir, "b.yaml", "drug: baclofen\nrules: {not: a list}\n")
    with pytest.raises(RuleSetError) as raised:
        compile_pack(pack_dir)
    assert sorted(map(str, raised.value.problems)) == sorted(_problems(pack_dir))


def test_unknown_field_is_located(pack_dir: Path) -> None:
    _write(pack_dir, "extra.yaml", rule("      - age_yaers: {gte: 3}"))
    probs = _problems(pack_dir)
    assert any(p.startswith("rules/baclofen/extra.yaml:9: E201: unknown field 'age_yaers'") for p in probs), probs


def test_bad_yaml_is_located(pack_dir: Path) -> None:
    _write(pack_dir, "broken.yaml", "drug: baclofen\nrules:\n  - id: [unclosed\n    title: x\n")
    probs = _problems(pack_dir)
    assert any(p.startswith("rules/baclofen/broken.yaml:4: E001: not valid YAML") for p in probs), probs


def test_duplicate_key_is_an_error(pack_dir: Path) -> None:
    _write(pack_dir, "dup.yaml", "drug: baclofen\ndrug: baclofen\nrules: []\n")
    assert any("dup.yaml:2: E001: duplicate key 'drug'" in p for p in _problems(pack_dir))


def test_schema_error_names_field_and_line(pack_dir: Path) -> None:
    text = rule("      - age_years: {gte: 3}").replace("version: 1.0.0", "version: one")
    _write(pack_dir, "ver.yaml", text)
    probs = _problems(pack_dir)
    assert any(p.startswith("rules/baclofen/ver.yaml:6: E002: rules.0.version") for p in probs), probs


def test_missing_sources_rejected(pack_dir: Path) -> None:
    text = rule("      - age_years: {gte: 3}").replace(
        '    sources: [{label: Test source, section: "1.1"}]\n', "    sources: []\n"
    )
    _write(pack_dir, "nosrc.yaml", text)
    assert any("nosrc.yaml" in p and "rules.0.sources" in p for p in _problems(pack_dir))


def test_source_without_section_or_url_rejected(pack_dir: Path) -> None:
    text = rule("      - age_years: {gte: 3}").replace('section: "1.1"', "note: none")
    _write(pack_dir, "vague.yaml", text)
    assert any("needs a 'section' or a 'url'" in p for p in _problems(pack_dir))


@pytest.mark.parametrize(
    ("when", "code", "fragment"),
    [
        ("      - conditions: {includes: no-such-set}", "E204", "unknown value-set 'no-such-set'"),
        ("      - comed_classes: {includes: no-such-class}", "E204", "unknown drug-class 'no-such-class'"),
        ("      - renal_band: terrible", "E205", "'renal_band' has no value 'terrible'"),
        ("      - sex: martian", "E203", "sex has no value 'martian'"),
        ("      - age_years: {about: 3}", "E202", "unknown operator 'about'"),
        ("      - age_years: {gte: 'three'}", "E202", "is not a number"),
        ("      - {age_years: 3, sex: male}", "E206", "exactly one key"),
        ("      - not: {age_years: 3}", "E201", "unknown field 'not'"),
        ("      - any_of: [{renal_band: mild}, {age_years: 3}]", "E206", "cannot be inside any_of"),
    ],
)
def test_bad_conditions_are_located(pack_dir: Path, when: str, code: str, fragment: str) -> None:
    _write(pack_dir, "cond.yaml", rule(when))
    probs = _problems(pack_dir)
    assert any(f"rules/baclofen/cond.yaml:9: {code}:" in p and fragment in p for p in probs), probs


def test_duplicate_rule_id_names_both_places(pack_dir: Path) -> None:
    text = rule("      - age_years: {gte: 3}").replace("baclofen.test.extra", "baclofen.dose.adult-start")
    _write(pack_dir, "dupid.yaml", text)
    probs = _problems(pack_dir)
    assert any(
        "E301: duplicate rule id 'baclofen.dose.adult-start' (first at rules/baclofen/drug.yaml" in p for p in probs
    ), probs


def test_contraindication_needs_critical_finding(pack_dir: Path) -> None:
    text = rule("      - age_years: {gte: 3}").replace("      finding:", "      contraindicated: true\n      finding:")
    _write(pack_dir, "ci.yaml", text)
    assert any("contraindication needs a finding with severity 'critical'" in p for p in _problems(pack_dir))


def test_every_error_is_collected_not_just_the_first(pack_dir: Path) -> None:
    _write(pack_dir, "a.yaml", rule("      - age_yaers: {gte: 3}"))
    _write(pack_dir, "b.yaml", "drug: baclofen\nrules: {not: a list}\n")
    probs = _problems(pack_dir)
    assert any("a.yaml" in p for p in probs) and any("b.yaml" in p for p in probs)


def test_example_referring_to_unknown_rule(pack_dir: Path) -> None:
    text = rule("      - age_years: {gte: 3}") + (
        "examples:\n  - name: refers to a ghost\n    patient: {age_years: 30}\n    expect: {fires: [baclofen.ghost]}\n"
    )
    _write(pack_dir, "ex.yaml", text)
    assert any("E501" in p and "baclofen.ghost" in p for p in _problems(pack_dir))


def test_file_in_wrong_folder(pack_dir: Path) -> None:
    (pack_dir / "baclofen" / "wrong.yaml").write_text("drug: tizanidine\nrules: []\n", encoding="utf-8")
    assert any("E302" in p and "wrong.yaml" in p for p in _problems(pack_dir))


def test_terminology_conflict_is_located(pack_dir: Path) -> None:
    extra = pack_dir / "terminology" / "zz-conflict.yaml"
    extra.write_text(
        "kind: value-sets\nvalue_sets:\n  - id: zz-test\n    title: Test set\n"
        '    icd10cm_prefixes: ["G40"]\n    sources: [{label: test source, section: x}]\n',
        encoding="utf-8",
    )
    probs = _problems(pack_dir)
    # a code may sit in several published sets, but a prefix claims a whole category for one set
    assert any("zz-conflict.yaml" in p and "E108" in p and "G40" in p for p in probs), probs


def test_missing_pack_version(pack_dir: Path) -> None:
    (pack_dir / "pack.yaml").write_text("title: no version\n", encoding="utf-8")
    assert any("pack.yaml" in p and "E003" in p for p in _problems(pack_dir))


def test_digest_changes_with_content(pack_dir: Path) -> None:
    before = compile_pack(pack_dir).digest
    path = pack_dir / "baclofen" / "drug.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n# comment\n", encoding="utf-8")
    assert compile_pack(pack_dir).digest != before


MONITOR_RULE = """drug: baclofen
rules:
  - id: baclofen.test.monitor
    title: A test rule
    version: 1.0.0
    sources: [{label: Test source, section: "1.1"}]
    when: []
    then:
      monitor:
{items}
"""


def _library(pack_dir: Path) -> dict[str, dict[str, str]]:
    data = yaml.safe_load((pack_dir / MONITORING_FILE).read_text(encoding="utf-8"))
    library: dict[str, dict[str, str]] = data["monitoring"]
    return library


def test_library_prompts_resolve_and_a_rule_may_replace_when(pack_dir: Path) -> None:
    items = "        - sedation\n        - use: falls\n          when: weekly while the dose changes"
    _write(pack_dir, "mon.yaml", MONITOR_RULE.replace("{items}", items))
    pack = compile_pack(pack_dir)
    got = [m.model_dump() for m in pack.rules["baclofen.test.monitor"].then.monitor]
    library = _library(pack_dir)
    assert got == [library["sedation"], {**library["falls"], "when": "weekly while the dose changes"}]
    assert got[1]["prompt"] == library["falls"]["prompt"], "only the replaced part differs"


def test_unknown_monitoring_name_is_located(pack_dir: Path) -> None:
    _write(pack_dir, "mon.yaml", MONITOR_RULE.replace("{items}", "        - falls\n        - sedaton"))
    probs = _problems(pack_dir)
    expected = "rules/baclofen/mon.yaml:11: E306: rules.0.then.monitor.1: no prompt 'sedaton'"
    assert any(p.startswith(expected) and "did you mean 'sedation'?" in p for p in probs), probs


def test_a_rule_cannot_replace_a_library_code(pack_dir: Path) -> None:
    _write(pack_dir, "mon.yaml", MONITOR_RULE.replace("{items}", "        - {use: sedation, code: falls}"))
    probs = _problems(pack_dir)
    assert any("mon.yaml:10: E002: rules.0.then.monitor.0: code: a rule may replace" in p for p in probs), probs


def test_library_problems_are_located(pack_dir: Path) -> None:
    path = pack_dir / MONITORING_FILE
    path.write_text(path.read_text(encoding="utf-8").replace("code: falls", "code: fals", 1), encoding="utf-8")
    probs = _problems(pack_dir)
    assert any(p.startswith("rules/shared/monitoring.yaml:") and "E002: monitoring.falls.code" in p for p in probs)


def test_library_without_sources_is_refused(pack_dir: Path) -> None:
    path = pack_dir / MONITORING_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["sources"]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    probs = _problems(pack_dir)
    assert any(p.startswith("rules/shared/monitoring.yaml:") and "E002: sources" in p for p in probs), probs
