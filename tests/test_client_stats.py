"""The client's frame statistics over a long run, in Node: bounded memory, and the rate of the last run."""

import json
import shutil
import subprocess
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static"

SCRIPT = """
import { FrameStats } from %s;
const stats = new FrameStats();
let at = 0;
for (let i = 0; i < 5000; i++) { at += 10; stats.record(at, 5); }   // 50 s at 100 frames/s
for (let i = 0; i < 50; i++) { at += 100; stats.record(at, 5); }    // then 5 s at 10 frames/s
console.log(JSON.stringify({ kept: stats._times.length, lastFps: stats.read(0, false).lastFps }));
"""


def test_a_client_nobody_reads_keeps_a_window_and_reports_the_last_run() -> None:
    """55 s of frames, `stats` never read on the way: at most a 2 s window is kept, and the last run's rate
    is the last run's (10 frames/s), not the average since the start (92)."""
    node = shutil.which("node")
    assert node, "node is needed (scripts/test installs it)"
    module = json.dumps((STATIC / "fal_stats.js").as_uri())
    done = subprocess.run([node, "--input-type=module", "-e", SCRIPT % module], capture_output=True, text=True,
                          timeout=60, check=True)
    result = json.loads(done.stdout)
    assert result["kept"] <= 21, result
    assert 9.5 <= result["lastFps"] <= 10.5, result
