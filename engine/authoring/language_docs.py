"""The fields-and-operators tables of docs/rule-language.md, generated from the language table.

Authors learn the condition language from docs/rule-language.md; a hand-kept table drifted from
the compiler (``{in: [..]}`` was accepted but undocumented). The tables between the markers are
written from ``engine.compiler.language`` and the pack's derived facts by ``cdsrules docs
--language docs/rule-language.md``, and a test fails when the committed copy differs.
"""

from __future__ import annotations

from pathlib import Path

from engine.compiler.conditions import COUNT_OPS
from engine.compiler.language import ANY_OF, CLASS_COUNT, FIELDS, KINDS, OPS, FieldSpec, Kind
from engine.schema_export import pack_vocabulary

BEGIN = (
    "<!-- BEGIN language tables: generated from engine/compiler/language.py by "
    "`cdsrules docs --language docs/rule-language.md`; edit the code, not these lines -->"
)
END = "<!-- END language tables -->"


def _code(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"`{v}`" for v in values)


def _values(spec: FieldSpec) -> str:
    if spec.kind == Kind.ENUM:
        return _code(spec.values)
    if spec.kind == Kind.SET:
        return f"{spec.universe} ids"
    return spec.unit


def language_tables(rules: Path) -> str:
    """The generated Markdown (without the markers) for the pack at ``rules``."""
    lines = ["| field | kind | values | meaning |", "|---|---|---|---|"]
    lines += [f"| `{f.name}` | {f.kind} | {_values(f)} | {f.description} |" for f in FIELDS.values()]
    lines.append(
        f"| `{CLASS_COUNT}` | count | `{{class: <drug-class id>, <op>: n}}`, one of {_code(list(COUNT_OPS))} "
        "| How many co-medications fall in the drug class. |"
    )
    lines.append(
        f"| `{ANY_OF}` | list | two or more conditions on the fields above | At least one holds "
        "(derived facts cannot be inside; list their values instead). |"
    )
    for name, fact in pack_vocabulary(rules).derived.items():
        lines.append(f"| `{name}` | derived (rules/shared/) | {_code(fact.values)} | {fact.title}. |")
    lines += ["", "| operator | on | value | meaning |", "|---|---|---|---|"]
    for op, spec in OPS.items():
        on = "; ".join(str(kind) for kind in spec.written)
        value = "; ".join(str(operand) for operand in spec.written.values())
        lines.append(f"| `{op}` | {on} | {value} | {spec.meaning} |")
    lines.append("")
    for kind in KINDS.values():
        parts = [f"**{kind.kind}**: {kind.meaning}"]
        if kind.bare is not None:
            parts.append(f"{kind.operand(kind.bare)} without an operator means `{kind.bare}`")
        parts.append("several operators in one mapping must all hold" if kind.several else "one operator per condition")
        alone = [f"`{op}`" for op in kind.operators().values() if OPS[op].alone]
        if alone:
            parts.append(f"{', '.join(alone)} stands alone")
        lines.append("- " + "; ".join(parts) + f": `{kind.example}`.")
    return "\n".join(lines) + "\n"


def rewrite(text: str, body: str) -> str:
    """``text`` with the lines between the markers replaced by ``body``; ValueError without markers."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the file has no {BEGIN!r} ... {END!r} region")
    return text[: start + len(BEGIN)] + "\n" + body + text[end:]
