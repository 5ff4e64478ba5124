"""Small helpers shared by the tests."""

import csv
from pathlib import Path


def csv_rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
