"""The summary files a run leaves beside its CSV: text, JSON and Markdown."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from halospec_tui.results.export_json import summary_json
from halospec_tui.results.export_md import summary_markdown
from halospec_tui.results.export_text import summary_text
from halospec_tui.results.report import Report


def summary_paths(csv_path: str | os.PathLike[str]) -> dict[str, Path]:
    p = Path(csv_path)
    stem = p.with_suffix("") if p.suffix == ".csv" else p
    return {
        "txt": Path(f"{stem}_summary.txt"),
        "json": Path(f"{stem}_summary.json"),
        "md": Path(f"{stem}_summary.md"),
    }


class SummaryWriteError(OSError):
    """Some summary files could not be written; the others were."""

    def __init__(self, written: list[Path], failed: list[tuple[Path, str]]) -> None:
        super().__init__("; ".join(f"{p}: {why}" for p, why in failed))
        self.written = written
        self.failed = failed


def _write_whole(path: Path, text: str) -> None:
    """Write `path` entirely or not at all (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a missing temporary among them
            tmp.unlink()
        raise


def write_summaries(
    csv_path: str | os.PathLike[str], report: Report, meta: dict[str, Any] | None = None
) -> list[Path]:
    """Write the txt, json and md summaries, each whole or not at all.

    Every file is tried; when any fails, SummaryWriteError lists which (and why)
    and which were written.
    """
    paths = summary_paths(csv_path)
    texts = {
        "txt": summary_text(report),
        "json": summary_json(report, meta) + "\n",
        "md": summary_markdown(report),
    }
    written: list[Path] = []
    failed: list[tuple[Path, str]] = []
    for kind, path in paths.items():
        try:
            _write_whole(path, texts[kind])
        except OSError as e:
            failed.append((path, e.strerror or str(e)))
        else:
            written.append(path)
    if failed:
        raise SummaryWriteError(written, failed)
    return written
