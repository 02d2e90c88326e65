"""Import an existing recording archive from disk: file name -> fields, header -> duration.

A file name is matched against a regular expression with named groups (`DEFAULT_PATTERN`, or
`pattern` in `[plugins.recordings]`): `start` (parsed with `start_format`, UTC, or epoch
seconds when all digits) is required; `call_id`, `caller`, `called`, `queue`, `agent`, `team`,
`direction`, `disposition` are taken when the pattern has them; without a `team` group the
team is the agent's `[[team]]`, else the queue (`feed.team_for`, as for recordings from
events). The duration comes from the
file's header: WAV through the standard library's `wave`, MP3 through `mutagen` (it reads the
Xing/VBRI header or walks the frames, which a hand-written parser would get wrong for VBR).

The recording id is the file's name (as for recordings from events, whose id is their file's
base name), so scanning again, or scanning what the daemon already indexed, adds nothing.
A file that does not match, vanished, or has a corrupt header is reported with its path and
the reason, counted, and skipped; the rest of the import goes on.
"""

from __future__ import annotations

import os
import re
import wave
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ctid.recordings.feed import team_for
from ctid.recordings.model import Recording
from ctid.teams import NO_TEAMS, Teams

DEFAULT_PATTERN = (r"^(?P<queue>[^_]+)_(?P<agent>[^_]+)_(?P<caller>[^_]*)_(?P<called>[^_]*)_"
                   r"(?P<start>\d{8}-\d{6})_(?P<call_id>[^.]+)\.(?:wav|mp3)$")
DEFAULT_START_FORMAT = "%Y%m%d-%H%M%S"
FIELDS = ("call_id", "caller", "called", "queue", "agent", "team", "direction", "disposition")
EXTENSIONS = (".wav", ".mp3")


class ScanError(ValueError):
    """A file that cannot be imported; the message names the file and the reason."""


@dataclass
class ScanReport:
    """What a scan did: recordings read from names and headers, files skipped and why."""

    found: list[Recording] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    added: int = 0


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The file name pattern, checked: it must compile and have a `start` group."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ScanError(f"pattern {pattern!r} is not a regular expression: {exc}") from None
    if "start" not in rx.groupindex:
        raise ScanError(f"pattern {pattern!r} has no (?P<start>...) group")
    return rx


def duration_of(path: Path) -> float:
    """Seconds of audio in a WAV or MP3 file, from its header. Raises ScanError."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".wav":
            with wave.open(str(path), "rb") as w:
                rate = w.getframerate()
                if rate <= 0:
                    raise ScanError(f"{path}: corrupt WAV header (sample rate {rate})")
                return w.getnframes() / rate
        if suffix == ".mp3":
            from mutagen import MutagenError
            from mutagen.mp3 import MP3

            try:
                return float(MP3(str(path)).info.length)
            except MutagenError as exc:
                raise ScanError(f"{path}: corrupt MP3 ({exc})") from None
    except FileNotFoundError:
        raise ScanError(f"{path}: the file vanished during the scan") from None
    except (wave.Error, EOFError) as exc:
        raise ScanError(f"{path}: corrupt WAV header ({exc or 'truncated'})") from None
    raise ScanError(f"{path}: not a .wav or .mp3 file")


def from_file(path: Path, rx: re.Pattern[str], start_format: str = DEFAULT_START_FORMAT,
              teams: Teams = NO_TEAMS) -> Recording:
    """The recording a file is, from its name and header. Raises ScanError."""
    m = rx.match(path.name)
    if m is None:
        raise ScanError(f"{path}: the file name does not match the pattern {rx.pattern!r}")
    groups = m.groupdict()
    text = groups["start"]
    try:
        if text.isdigit() and len(text) >= 9:
            start = float(text)
        else:
            start = datetime.strptime(text, start_format).replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise ScanError(f"{path}: start {text!r} does not fit the format {start_format!r}") from None
    values = {name: (groups.get(name) or None) for name in FIELDS}
    return Recording(recording_id=path.name, start=start, duration=duration_of(path), path=str(path),
                     team=team_for(values.pop("team"), values["agent"], values["queue"], teams), **values)


def audio_files(root: Path) -> Iterator[Path]:
    """Every .wav/.mp3 under `root`, in a stable order."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(EXTENSIONS):
                yield Path(folder) / name


def scan(root: Path, rx: re.Pattern[str], start_format: str = DEFAULT_START_FORMAT,
         teams: Teams = NO_TEAMS) -> ScanReport:
    """Read every audio file under `root`; bad ones go to `errors` and the scan goes on.
    `teams`: the site's `[[team]]` tables, for the recordings' teams."""
    report = ScanReport()
    if not root.is_dir():
        raise ScanError(f"{root}: not a directory")
    for path in audio_files(root):
        try:
            report.found.append(from_file(path, rx, start_format, teams))
        except ScanError as exc:
            report.errors.append(str(exc))
    return report
