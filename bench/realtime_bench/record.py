"""What a run has measured so far, kept so that a Ctrl+C or a failed point still leaves a record.

Every point is added as it is measured and the JSON is rewritten at once (`"partial": true` until
the run ends), so an interrupted run's figures are on disk; `Interrupted` carries the stop up to
the runner, which then writes the full outputs of what it has.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from .report import write_json
from .spread import medians


@dataclass
class Record:
    """Every run of every point, by phase, and the metadata of the run."""

    meta: dict[str, Any]
    out_dir: Path
    runs: dict[str, list[Any]] = field(default_factory=dict)
    interrupted: bool = False

    def stop(self, reason: Exception) -> None:
        """The run ended before its plan: say why in the record; a signal exits 130, a failure 1."""
        self.interrupted = True
        self.meta["stopped"] = f"stopped early ({type(reason).__name__}: {reason}); the figures are what was " \
                               "measured before"
        self.meta["exit_code"] = 130 if isinstance(reason, Interrupted) else 1

    def add(self, phase: str, point: Any) -> None:
        self.runs.setdefault(phase, []).append(point)
        self.checkpoint()

    def medians(self, phase: str, key: Callable[[Any], Hashable]) -> list[Any]:
        """One point per `key` (route and what was measured): the median of its runs with min–max."""
        return medians(self.runs.get(phase, []), key)

    def raw(self) -> dict[str, list[dict[str, Any]]]:
        return {phase: [p.to_json() for p in points] for phase, points in self.runs.items()}

    def checkpoint(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_json({"meta": self.meta | {"partial": True}, "runs": self.raw()}, self.out_dir / "bench.json")


class Interrupted(Exception):
    """Raised inside the sweep when the user pressed Ctrl+C (SIGINT) or sent SIGTERM."""


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into `Interrupted` for the run's duration, then restore the handlers."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
