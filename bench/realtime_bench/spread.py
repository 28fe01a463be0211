"""Repeated runs into one figure: the median of each number, with its min–max, never a lone best run.

`--repeat N` takes every point N times, interleaved route by route, so drift on a busy machine hits
all routes alike. `median_point` turns one point's runs into a point of the same type whose every
number is the median over the runs, with `spread` holding each figure's [min, max]; targets and
ratios are then judged on those medians, and the JSON keeps every run beside them.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from .stats import Point, compare, point_key

T = TypeVar("T")
SPREAD_SKIP = frozenset({"run", "runs", "sessions", "frame_bytes", "image_bytes", "rate", "viewers", "spread"})


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _median(values: Sequence[Any]) -> Any:
    """The median of numbers (None when any run had none); dicts of numbers key by key; else the first."""
    first = values[0]
    if all(_number(v) for v in values):
        middle = statistics.median(values)
        return round(middle) if all(isinstance(v, int) for v in values) else float(middle)
    if all(isinstance(v, dict) for v in values):
        keys = [k for k in first if all(k in v for v in values)]
        return {k: _median([v[k] for v in values]) for k in keys}
    if any(v is None for v in values):
        return None
    return first


def _spreads(name: str, values: Sequence[Any], out: dict[str, list[float]]) -> None:
    if all(_number(v) for v in values):
        out[name] = [float(min(values)), float(max(values))]
    elif all(isinstance(v, dict) for v in values):
        for key in values[0]:
            if all(key in v for v in values):
                _spreads(f"{name}.{key}", [v[key] for v in values], out)


def median_point(runs: Sequence[T]) -> T:
    """One point of the same dataclass type: every number the median over `runs`, `spread` its [min, max]."""
    if not runs:
        raise ValueError("no runs to take a median of")
    first = runs[0]
    values: dict[str, Any] = {}
    spread: dict[str, list[float]] = {}
    for f in dataclasses.fields(first):  # type: ignore[arg-type]
        column = [getattr(r, f.name) for r in runs]
        if f.name == "errors":
            values[f.name] = [e for r in runs for e in getattr(r, "errors")][:20]
        elif f.name in SPREAD_SKIP or f.name == "route" or isinstance(column[0], list):
            values[f.name] = column[0]
        else:
            values[f.name] = _median(column)
            if len(runs) > 1:
                _spreads(f.name, column, spread)
    values.update(runs=len(runs), spread=spread)
    return dataclasses.replace(first, **values)  # type: ignore[type-var]


def medians(points: Sequence[T], key: Callable[[T], Hashable]) -> list[T]:
    """Group `points` by `key` (first-seen order) and take each group's `median_point`."""
    groups: dict[Hashable, list[T]] = {}
    for p in points:
        groups.setdefault(key(p), []).append(p)
    return [median_point(group) for group in groups.values()]


def ratio_spreads(rows: list[dict[str, Any]], runs: Sequence[Point]) -> None:
    """Add to each comparison row each ratio's [min, max] over the runs, subject and baseline paired by run."""
    index = {(p.route, p.run, point_key(p)): p for p in runs}
    for row in rows:
        row_key = (row["frame_bytes"], row["sessions"], row["rate"], row["image_bytes"])
        subject_runs = [p for p in runs if p.route == row["route"] and point_key(p) == row_key]
        for name in [k for k in row if k.startswith("vs_")]:
            pairs = [(s, index.get((name[3:], s.run, row_key))) for s in subject_runs]
            per_run = [compare(s, b)["ratio"] for s, b in pairs if b is not None]
            spread: dict[str, list[float]] = {}
            if len(per_run) > 1:
                for ratio in per_run[0]:
                    got = [r[ratio] for r in per_run if r[ratio] is not None]
                    if len(got) == len(per_run):
                        spread[ratio] = [min(got), max(got)]
            row[name]["ratio_spread"] = spread
