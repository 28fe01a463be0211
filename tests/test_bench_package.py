"""realtime-bench is its own distribution (bench/): in step with the relay, no import circles, and it
reaches the relay only through its public surface (the command lines, `tickets.mint`, the wire)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "realtime_bench"
# What the benchmark may import from the relay: ticket minting (tickets.mint, MAX_LIFETIME, Role).
RELAY_PUBLIC = {"realtime_server.tickets"}


def _imports() -> dict[str, set[str]]:
    """Each realtime_bench module and the modules it imports, wherever in the file (function-level too)."""
    graph: dict[str, set[str]] = {}
    for path in BENCH.glob("*.py"):
        name = f"realtime_bench.{path.stem}"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:  # from . import x / from .x import y
                    base = "realtime_bench" + (f".{node.module}" if node.module else "")
                    found |= {f"{base}.{a.name}" if not node.module else base for a in node.names}
                elif node.module:
                    found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = found
    return graph


def test_versions_in_step() -> None:
    """The benchmark's version is the relay's, and it asks for that relay."""
    relay = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bench = tomllib.loads((ROOT / "bench" / "pyproject.toml").read_text())["project"]
    assert bench["version"] == relay["version"]
    assert f"fal-realtime-relay[embedded]=={relay['version']}" in bench["dependencies"]
    assert "realtime-bench" in bench["scripts"] and "realtime-bench" not in relay.get("scripts", {})


def test_no_import_circles() -> None:
    """No module of the benchmark imports, directly or through others, a module that imports it."""
    graph = _imports()
    modules = set(graph)
    edges = {m: {d for d in deps if d in modules and d != m} for m, deps in graph.items()}
    circles = []
    for start in modules:
        stack, seen = [start], set()
        while stack:
            for nxt in edges[stack.pop()]:
                if nxt == start:
                    circles.append(start)
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
    assert sorted(set(circles)) == []


def test_uses_the_relay_only_through_its_public_surface() -> None:
    """Only `realtime_server.tickets` is imported; the relay and its embedded gateway run as commands."""
    used = {d for deps in _imports().values() for d in deps if d.startswith("realtime_server")}
    assert used <= RELAY_PUBLIC | {"realtime_server"}, used
    sources = "".join(p.read_text() for p in BENCH.glob("*.py"))
    assert '"realtime_server.cli"' in sources and '"realtime_server.local_app"' in sources
