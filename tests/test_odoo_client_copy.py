"""The Odoo addon bundles the one browser client: its copy is `scripts/sync-odoo-client`'s output."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "sync-odoo-client"
COPY = ROOT / "llm_fal_ai_realtime" / "static" / "src" / "fal_realtime"


def test_addon_copy_of_the_browser_client_is_up_to_date() -> None:
    """static/fal_realtime.js and its msgpack, as rewritten for Odoo's bundle, equal the addon's copy."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{result.stdout}{result.stderr}"


def test_addon_copy_is_what_odoos_bundle_takes() -> None:
    """Only .js modules with relative .js imports; no generator exports (Odoo's transpiler has no rule for them)."""
    files = [path for path in COPY.rglob("*") if path.is_file()]
    assert {path.suffix for path in files} == {".js", ""}, sorted(str(p) for p in files)  # "" for LICENSE, VERSION
    for path in files:
        if path.suffix == ".js":
            text = path.read_text()
            assert not re.search(r"""from\s*["'][^"']*\.mjs["']""", text), path
            assert not re.search(r"^export\s+(async\s+)?function\s*\*", text, re.M), path
            assert not re.search(r"^export\s*\{\s*\}", text, re.M), path
    assert (COPY / "vendor" / "msgpack" / "LICENSE").read_bytes() == (
        ROOT / "static" / "vendor" / "msgpack" / "LICENSE").read_bytes()


def test_addon_copy_holds_every_module_it_imports() -> None:
    """Each relative import of the copied modules (the client is several now) names a file of the copy, so a
    module missing from the script's SOURCES fails here, not in Odoo's bundle."""
    entries = {COPY / "fal_realtime.js", COPY / "fal_status.js"}  # what the addon's own code imports
    seen: set[Path] = set()
    todo = list(entries)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        assert path.is_file(), f"{path.relative_to(COPY)} is imported but not in the copy: add it to SOURCES"
        seen.add(path)
        for target in re.findall(r"""\bfrom\s*["'](\.{1,2}/[^"']+)["']""", path.read_text()):
            todo.append((path.parent / target).resolve())
    assert {path.name for path in seen} >= {"fal_connection.js", "fal_handover.js", "fal_renewal.js", "index.js"}


def test_rewrite_keeps_generator_exports() -> None:
    """An exported generator stays exported, in the `export { name };` form."""
    loader = importlib.machinery.SourceFileLoader("sync_odoo_client", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    sync = importlib.util.module_from_spec(spec)
    loader.exec_module(sync)
    source = 'import { a } from "./a.mjs";\nexport {};\nexport async function* gen(x) {\n    yield x;\n}\n'
    assert sync.rewrite(source) == (
        'import { a } from "./a.js";\nasync function* gen(x) {\n    yield x;\n}\nexport { gen };\n')
