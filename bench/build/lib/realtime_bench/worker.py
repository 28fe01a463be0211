"""`python -m realtime_bench.worker`: the load generator's process (see `load.py` for its protocol).

It reads the `LoadSpec` line and runs plain sessions (`load.run`) or a live session's fan-out
(`fanout.run_fanout`); both build on `load`, so the choice between them lives here, above both.
"""

from __future__ import annotations

import asyncio
import json
import sys

from .fanout import run_fanout
from .load import LoadSpec, read_line, run

# The spec line carries a ticketed URL per fan-out viewer (about 0.5 KB each): past the default 64 KB.
SPEC_LINE_LIMIT = 64 * 1024 * 1024


async def _main() -> None:
    loop = asyncio.get_running_loop()
    control = asyncio.StreamReader(limit=SPEC_LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(control), sys.stdin)
    spec = LoadSpec(**json.loads(await read_line(control)))
    if spec.viewers:
        await run_fanout(spec, control)
    else:
        await run(spec, control)


def main() -> None:
    try:
        import uvloop  # the client's own overhead is part of every figure: keep it small
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(_main())
    else:
        uvloop.run(_main())


if __name__ == "__main__":
    main()
