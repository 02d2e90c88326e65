"""Export a selection of recordings to a directory: the files and `manifest.csv`.

The manifest has one row per selected recording: its fields, the exported file's name, its
size and SHA-256 (computed while copying, in one read), and `status` (`ok`, or why the file
is missing), so the client receiving the hand-over can check every file and see what did not
come. A file that cannot be read is reported, counted and skipped; the export goes on.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ctid.recordings.model import FIELDS, Recording

MANIFEST = "manifest.csv"
COLUMNS = (*FIELDS, "file", "bytes", "sha256", "status")
_CHUNK = 1024 * 1024


@dataclass
class ExportReport:
    exported: int = 0
    errors: list[str] = field(default_factory=list)
    manifest: Path | None = None


def _copy_hashing(src: Path, dst: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def export(recs: Sequence[Recording], dest: Path) -> ExportReport:
    """Copy the recordings' files into `dest` (made if missing) and write its manifest."""
    dest.mkdir(parents=True, exist_ok=True)
    report = ExportReport(manifest=dest / MANIFEST)
    used: set[str] = set()
    with open(report.manifest, "w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, COLUMNS)
        out.writeheader()
        for rec in recs:
            row = {k: v for k, v in rec.as_json().items()}
            row["tags"] = ";".join(rec.tags)
            row.update(file="", bytes="", sha256="", status="ok")
            if not rec.path:
                row["status"] = "missing: no file path is known"
            else:
                src = Path(rec.path)
                name = src.name if src.name not in used and src.name != MANIFEST else f"{rec.id}-{src.name}"
                try:
                    size, sha = _copy_hashing(src, dest / name)
                    used.add(name)
                    row.update(file=name, bytes=size, sha256=sha)
                    report.exported += 1
                except OSError as exc:
                    (dest / name).unlink(missing_ok=True)
                    row["status"] = f"missing: {exc.strerror or exc}"
            if row["status"] != "ok":
                report.errors.append(f"{rec.recording_id}: {row['status']} ({rec.path})")
            out.writerow(row)
    return report
