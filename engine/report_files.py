"""The shell both single-file HTML reports share (the cohort report and the override report).

Each writes ``summary.json``, its PNGs under ``img/`` and one ``report.html`` whose figures are
embedded as data URIs, so the committee can receive the report as one file; the look is the same.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"

BASE_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1, h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: .6em 1em; }
img { max-width: 100%; }
"""


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def start_report(summary: dict[str, Any], out: Path) -> Path:
    """Create ``out`` and ``out/img``, write ``summary.json``; returns the image folder."""
    out.mkdir(parents=True, exist_ok=True)
    img = out / "img"
    img.mkdir(exist_ok=True)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return img
