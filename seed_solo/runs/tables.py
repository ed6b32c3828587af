"""A results table written twice: as CSV for programs and as Markdown for people."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, List, Sequence

from seed_solo.runs.atomic import atomic_path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """``rows`` under ``header`` as a Markdown table; floats with two decimals."""
    def cell(v: Any) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows])


def write_table(csv_path: Path, header: List[str], rows: List[List[str]]) -> str:
    """Write ``rows`` under ``header`` as CSV at ``csv_path`` (atomically); return them as a
    Markdown table."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_path(Path(csv_path)) as tmp:
        tmp.write_text(text.getvalue())
    return markdown_table(header, rows)
