"""realtime-bench --mode browser: the widget in Debian's Chromium, input to pixels, split into its parts."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest


def test_browser_mode_times_the_widget_from_input_to_pixels(tmp_path: Path) -> None:
    """Two runs of six frames: every frame's parts add up to input-to-pixels, and the report shows the split."""
    env = {k: v for k, v in os.environ.items() if k != "FAL_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "realtime_bench", "--mode", "browser", "--repeat", "2", "--max-frames", "6",
         "--warmup", "1", "--duration", "30", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=180, env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "input to pixels" in done.stdout and "decode + draw" in done.stdout
    result = json.loads((tmp_path / "bench.json").read_text())
    assert [p["route"] for p in result["runs"]["browser"]] == ["relay", "relay"]
    (point,) = result["browser"]
    assert point["runs"] == 2 and point["frames"] == 6 and not point["errors"]
    lo, hi = point["spread"]["input_to_pixels_ms.p50"]
    assert lo <= point["input_to_pixels_ms"]["p50"] <= hi
    for run in result["runs"]["browser"]:
        assert len(run["samples"]) == 6
        for frame in run["samples"]:
            # local/preview reports its render time; the rest of the round trip is the network and the relay.
            assert 0 < frame["upstream_ms"] < frame["round_trip_ms"]
            assert frame["network_ms"] == pytest.approx(frame["round_trip_ms"] - frame["upstream_ms"])
            assert frame["decode_draw_ms"] > 0 and frame["paint_ms"] >= 0 and frame["send_delay_ms"] >= 0
            parts = frame["send_delay_ms"] + frame["round_trip_ms"] + frame["decode_draw_ms"] + frame["paint_ms"]
            assert frame["input_to_pixels_ms"] == pytest.approx(parts, abs=0.01)
    png = (tmp_path / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24])[0] >= 400
