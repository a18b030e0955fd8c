"""Bulk import and backfill: JSONL or CSV exports into ingest, with a progress bar.

Rows go through ingest's own `POST /v1/mentions?source=import`, so they are matched,
de-duplicated and emitted exactly like live mentions; re-running an import is harmless (the
second run reports duplicates). A 503 (broker down) is retried with backoff; bad rows are
reported with their line number and the import goes on.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tqdm import tqdm

#: CSV columns that become the nested `author` and `metrics` objects.
_AUTHOR_COLUMNS = {
    "author_id": "id",
    "author_handle": "handle",
    "author_name": "display_name",
    "author_followers": "followers",
}
_METRIC_COLUMNS = {"likes", "shares", "comments", "views"}


@dataclass
class ImportReport:
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    unmatched: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def csv_row_to_item(row: dict[str, str]) -> dict[str, Any]:
    """A flat CSV row (see docs) to the nested shape of `POST /v1/mentions`."""
    item: dict[str, Any] = {
        key: value
        for key, value in row.items()
        if key not in _AUTHOR_COLUMNS and key not in _METRIC_COLUMNS and value != ""
    }
    author: dict[str, Any] = {}
    for column, name in _AUTHOR_COLUMNS.items():
        if row.get(column):
            author[name] = row[column]
    if "followers" in author:
        author["followers"] = _int_or_none(author["followers"])
    item["author"] = author
    item["metrics"] = {name: _int_or_none(row.get(name)) for name in _METRIC_COLUMNS}
    return item


def read_rows(stream: TextIO, fmt: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, item) per row; a row that cannot be read yields its error text instead."""
    if fmt == "csv":
        for number, row in enumerate(csv.DictReader(stream), start=2):
            yield number, csv_row_to_item(row)
        return
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not JSON: {exc}"
            continue
        yield number, value if isinstance(value, dict) else "not a JSON object"


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in (429, 502, 503, 504)
    return isinstance(exc, httpx.TransportError)


class Importer:
    def __init__(self, client: httpx.Client, batch_size: int = 500) -> None:
        self.client = client
        self.batch_size = batch_size

    @retry(
        retry=retry_if_exception(_retryable),
        wait=wait_exponential_jitter(initial=1, max=30),
        stop=stop_after_attempt(10),
        reraise=True,
    )
    def _post(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        response = self.client.post("/v1/mentions", params={"source": "import"}, json=items)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def run(self, path: Path, fmt: str, progress: bool = True) -> ImportReport:
        report = ImportReport()
        batch: list[tuple[int, dict[str, Any]]] = []
        with path.open(encoding="utf-8", newline="") as counting:
            total = sum(1 for _ in counting) - (1 if fmt == "csv" else 0)
        with (
            path.open(encoding="utf-8", newline="") as stream,
            tqdm(total=total, unit=" rows", disable=not progress) as bar,
        ):
            for number, item in read_rows(stream, fmt):
                report.rows += 1
                if isinstance(item, str):
                    report.rejected.append((number, item))
                else:
                    batch.append((number, item))
                if len(batch) >= self.batch_size:
                    self._flush(batch, report)
                    bar.update(report.rows - bar.n)
                    bar.set_postfix(accepted=report.accepted, duplicates=report.duplicates)
            self._flush(batch, report)
            bar.update(report.rows - bar.n)
        return report

    def _flush(self, batch: list[tuple[int, dict[str, Any]]], report: ImportReport) -> None:
        if not batch:
            return
        result = self._post([item for _, item in batch])
        report.accepted += result["accepted"]
        report.duplicates += result["duplicates"]
        report.unmatched += result.get("unmatched", 0)
        for rejected in result["rejected"]:
            report.rejected.append((batch[rejected["index"]][0], rejected["reason"]))
        batch.clear()


def import_file(url: str, token: str, path: Path, fmt: str | None, progress: bool) -> int:
    """CLI entry: import `path` into the ingest service at `url`; exit code 1 on bad rows."""
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    headers = {"Authorization": f"Bearer {token}"}
    # Not the guarded client: `url` is operator configuration (--url or settings), not user input.
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        report = Importer(client).run(path, fmt, progress)
    print(
        f"{report.rows} rows: {report.accepted} accepted, {report.duplicates} duplicates, "
        f"{report.unmatched} matched no tracker, {len(report.rejected)} rejected"
    )
    for line, reason in report.rejected[:50]:
        print(f"  line {line}: {reason}", file=sys.stderr)
    if len(report.rejected) > 50:
        print(f"  … and {len(report.rejected) - 50} more", file=sys.stderr)
    return 1 if report.rejected else 0
