"""Bulk CSV import and export of the contact store.

The format (UTF-8, a header row, any column order):

    number,name,company,level,vip,notes,custom
    +12025550111,Ann Lee,Acme,gold,yes,"prefers email","{""account"": ""A-17""}"

Only `number` is required. `vip` is true/false, yes/no or 1/0; `custom` is a JSON object.
Any other column is a custom field (`tier,Acme` -> `custom.tier = "Acme"`), so a sheet
exported from another CRM imports as it is. A bad row is reported as `line N: field:
problem`, counted and skipped; every good row is still imported. A row for a number that
already has a contact changes the columns the file has and keeps the others.
"""

from __future__ import annotations

import codecs
import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ctid_plugins.screenpop.contacts.models import FIELDS
from ctid_plugins.screenpop.contacts.store import ContactError, ContactStore, clean


class CsvError(Exception):
    """The file as a whole cannot be imported (not UTF-8, no header, no `number` column)."""


@dataclass
class ImportReport:
    rows: int = 0  # data rows read (blank lines not counted)
    inserted: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)  # "line N: problem", one per bad row

    @property
    def imported(self) -> int:
        return self.inserted + self.updated


def _check_utf8(path: Path) -> None:
    """Refuse a file that is not UTF-8 before anything is written (an import is all rows or
    the good rows, never "up to where the encoding broke")."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk.count(b"\n", 0, exc.start)
                raise CsvError(f"{path}: line {line}: not UTF-8 text ({exc.reason}); save the file as CSV UTF-8") from None
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise CsvError(f"{path}: line {line}: the file ends inside a UTF-8 character") from None


def _rows(path: Path, store: ContactStore, report: ImportReport) -> Iterator[dict[str, Any]]:
    _check_utf8(path)
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise CsvError(f"{path}: the file is empty (expected a header row with a 'number' column)") from None
        if "number" not in header:
            raise CsvError(f"{path}: line 1: no 'number' column in the header {header!r}")
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise CsvError(f"{path}: line 1: column {dupes[0]!r} appears twice")
        start = reader.line_num + 1
        while True:
            line = start
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                report.rows += 1
                report.errors.append(f"line {line}: not valid CSV: {exc}")
                start = reader.line_num + 1
                continue
            start = reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            report.rows += 1
            if len(row) != len(header):
                report.errors.append(f"line {line}: {len(row)} fields, the header has {len(header)}")
                continue
            try:
                yield clean(_record(header, row), store.plan)
            except ContactError as exc:
                report.errors.append(f"line {line}: {exc}")


def _record(header: list[str], row: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for key, cell in zip(header, row):
        if key in FIELDS:
            record[key] = cell
        elif key and cell.strip():
            extra[key] = cell.strip()
    if extra:
        custom = record.get("custom", "")
        try:
            base = json.loads(custom) if custom.strip() else {}
        except ValueError:
            base = None  # clean() reports the bad JSON
        if isinstance(base, dict):
            record["custom"] = {**base, **extra}
    return record


def import_csv(path: str | Path, store: ContactStore) -> ImportReport:
    """Import a file; good rows are written in chunks even if others are bad."""
    report = ImportReport()
    report.inserted, report.updated = store.upsert_many(_rows(Path(path), store, report))
    return report


def export_csv(path: str | Path, store: ContactStore) -> int:
    """Write every contact in the import format; the number of contacts written."""
    n = 0
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for c in store.all():
            writer.writerow([c["number"], c["name"] or "", c["company"] or "", c["level"] or "",
                             "true" if c["vip"] else "false", c["notes"] or "",
                             json.dumps(c["custom"], ensure_ascii=False, sort_keys=True) if c["custom"] else ""])
            n += 1
    return n
