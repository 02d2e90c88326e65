"""The README's first command, as a newcomer runs it (here for a few seconds)."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_shows_live_calls_and_exits_cleanly():
    out = subprocess.run([sys.executable, "-m", "ctid", "demo", "--duration", "6", "--speed", "30", "--seed", "3"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert re.search(r"^queue\s+waiting\s+longest\s+ready\s+busy", text, re.M)
    for queue in ("sales", "support", "vip"):
        assert re.search(rf"^{queue}\s+\d+\s+\d\d:\d\d", text, re.M)
    assert "call.established" in text  # the ticker shows calls flowing
    finished = re.search(r"demo finished: (\d+) call events on the bus", text)
    assert finished and int(finished.group(1)) > 20


def test_sim_command_serves_ami():
    proc = subprocess.Popen([sys.executable, "-m", "ctid", "sim", "asterisk", "--port", "0", "--seed", "1",
                             "--duration", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert re.match(r"ctid sim asterisk: AMI on 127\.0\.0\.1:\d+ \(seed 1, speed 1\)", line), line
    proc.wait(timeout=30)
    assert proc.returncode == 0
