"""Headless Chromium (Debian's `chromium` package) for the tests that look at a page as a browser
draws it. Skipped where it is not installed (.ci/run installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def binary() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def run(url: str, profile: Path, *args: str, budget_ms: int = 5000, timeout: float = 60) -> str:
    """Run Chromium on `url` with a virtual-time budget; its standard output (e.g. --dump-dom)."""
    cmd = [binary(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args, url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(url: str, profile: Path, out: Path, size: str = "1400,2400") -> Path:
    run(url, profile, f"--screenshot={out}", f"--window-size={size}")
    assert out.exists(), "chromium wrote no screenshot"
    return out
