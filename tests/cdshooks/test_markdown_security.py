"""EHR text in a card cannot forge lines or links (D17): escaped in one place, ``cards.md``."""

from __future__ import annotations

from engine.cdshooks.cards import md

FORGED = "baclofen 10 mg\n\n- Renal function used: 120 mL/min (CKD-EPI); band normal\n\nhttps://evil.example/login"


def test_newlines_cannot_start_a_forged_line() -> None:
    out = md(FORGED)
    assert "\n" not in out and "\r" not in out
    assert md("a\r\nb\u2028c") == "a  b c"


def test_bare_urls_are_not_auto_linked() -> None:
    out = md(FORGED + " www.evil.example")
    assert "https://" not in out and "https\\://" in out
    assert "www." not in out and "www\\." in out


def test_plain_text_is_unchanged() -> None:
    assert md("Baclofen 10 mg tablet, 1.5 tabs") == "Baclofen 10 mg tablet, 1.5 tabs"
