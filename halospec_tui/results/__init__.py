"""Results: the CSV a run writes, reading it back, and the summaries made from it.

One module per job:

- `schema`: the columns of a results row, and a StepRecord as its cells;
- `writer`: appending rows (whole or not at all), moving a torn last row aside;
- `reader`: reading a CSV back, every row checked, split into runs;
- `samples`: a run's samples as numpy columns, and views of them;
- `report`: the report's figures (`Report`, `build_report`), from rows alone;
- `export_text`, `export_json`, `export_md`: one exporter per format;
- `summary_files`: the three summary files a run leaves beside its CSV.

The names below are the package's public ones; the modules hold the rest.
"""

from halospec_tui.results.export_json import summary_json
from halospec_tui.results.export_md import summary_markdown
from halospec_tui.results.export_text import summary_text
from halospec_tui.results.reader import (
    Run,
    RunSamples,
    iter_runs,
    read_runs,
    sample_from_record,
    sample_from_row,
)
from halospec_tui.results.report import Report, build_report
from halospec_tui.results.schema import (
    COLUMNS,
    DEFAULT_CSV,
    ORIGINAL_COLUMNS,
    ResultsError,
    record_cells,
)
from halospec_tui.results.summary_files import SummaryWriteError, summary_paths, write_summaries
from halospec_tui.results.writer import CsvWriter

__all__ = [
    "COLUMNS",
    "DEFAULT_CSV",
    "ORIGINAL_COLUMNS",
    "CsvWriter",
    "Report",
    "ResultsError",
    "Run",
    "RunSamples",
    "SummaryWriteError",
    "build_report",
    "iter_runs",
    "read_runs",
    "record_cells",
    "sample_from_record",
    "sample_from_row",
    "summary_json",
    "summary_markdown",
    "summary_paths",
    "summary_text",
    "write_summaries",
]
