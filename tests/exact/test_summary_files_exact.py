"""The summary files beside a CSV: their names, and their bytes (UTF-8 whatever the
locale says)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from halospec_tui.events import KnobVerdict
from halospec_tui.results.report import Report
from halospec_tui.results.summary_files import _write_whole, summary_paths, write_summaries


def test_summary_paths_replace_a_csv_suffix_and_keep_any_other() -> None:
    assert summary_paths("runs/a.csv") == {
        "txt": Path("runs/a_summary.txt"), "json": Path("runs/a_summary.json"),
        "md": Path("runs/a_summary.md"),
    }  # fmt: skip
    assert summary_paths("b.log")["md"] == Path("b.log_summary.md")
    assert summary_paths("c")["txt"] == Path("c_summary.txt")


def test_the_files_are_utf8_under_an_ascii_locale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A locale that says ASCII (LANG=C without UTF-8 mode): a text file opened without an
    # encoding would take it, and "é" or "±" could not be written.
    real = io.text_encoding  # type: ignore[attr-defined]  # Python 3.10+; typeshed gates it
    monkeypatch.setattr(io, "text_encoding", lambda e, *a: "ascii" if e is None else real(e))
    target = tmp_path / "x.txt"
    _write_whole(target, "±é\n")
    assert target.read_bytes() == "±é\n".encode()
    report = Report((), None, None, KnobVerdict("unverified", "K é"))
    paths = write_summaries(tmp_path / "r.csv", report, {"who": "é"})
    assert [p.name for p in paths] == ["r_summary.txt", "r_summary.json", "r_summary.md"]
    assert paths[2].read_bytes().endswith("Knob check: **unverified**: K é\n".encode())
    assert '"who": "\\u00e9"' in paths[1].read_text(encoding="utf-8")  # JSON escapes it
    assert paths[1].read_text(encoding="utf-8").endswith("}\n")
    assert paths[0].read_text(encoding="utf-8").endswith("\n[NOTE] K é\n")
