"""The number-prefix table: which region a caller is from, longest prefix wins.

The table is a CSV file of `prefix,region` rows (UTF-8, an optional `prefix,region` header,
blank lines and `#` comment lines allowed). A prefix is written as the normalized numbers
are (`+1202`, `+8613`; or national digits such as `0755` for a site without a
`country_code`); spaces and dashes inside it are ignored. The sample shipped in
`data/regions.csv` covers a few +1 US area codes and +86 city and mobile prefixes.
"""

from __future__ import annotations

import csv
import io
import re
from importlib import resources
from pathlib import Path

_PREFIX = re.compile(r"^\+?\d{1,15}$")
_CLEAN = re.compile(r"[\s\-]")


def sample_path() -> Path:
    """The shipped sample table (package data)."""
    return Path(str(resources.files("ctid_plugins.screenpop") / "data" / "regions.csv"))


class RegionTable:
    """Prefix -> region, looked up longest prefix first (a dict probe per length)."""

    def __init__(self, entries: dict[str, str]) -> None:
        self.entries = dict(entries)
        self.longest = max((len(p) for p in self.entries), default=0)

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, number: str | None) -> str | None:
        if not number:
            return None
        entries = self.entries
        for n in range(min(len(number), self.longest), 0, -1):
            region = entries.get(number[:n])
            if region is not None:
                return region
        return None

    @classmethod
    def parse(cls, text: str) -> tuple[RegionTable, list[str]]:
        """The table and one `line N: problem` per bad row (bad rows are left out)."""
        entries: dict[str, str] = {}
        where: dict[str, int] = {}
        errors: list[str] = []
        reader = csv.reader(io.StringIO(text))
        start = 1
        for row in reader:
            line, start = start, reader.line_num + 1
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if line == 1 and [c.lower() for c in cells[:2]] == ["prefix", "region"]:
                continue
            if len(cells) != 2:
                errors.append(f"line {line}: expected 2 fields (prefix,region), got {len(cells)}")
                continue
            prefix, region = _CLEAN.sub("", cells[0]), cells[1]
            if not _PREFIX.match(prefix):
                errors.append(f"line {line}: {cells[0]!r} is not a number prefix (digits, optionally after +)")
            elif not region:
                errors.append(f"line {line}: empty region for prefix {prefix}")
            elif prefix in entries:
                errors.append(f"line {line}: prefix {prefix} is already on line {where[prefix]}")
            else:
                entries[prefix] = region
                where[prefix] = line
        return cls(entries), errors

    @classmethod
    def load(cls, path: str | Path) -> tuple[RegionTable, list[str]]:
        """Read a table file; an unreadable file raises OSError or UnicodeDecodeError."""
        return cls.parse(Path(path).read_text(encoding="utf-8-sig"))
