"""`python -m tests.json_app --port N`: a fal app that speaks JSON, served by fal's SDK like the embedded apps.

fal's `@fal.realtime` lets an app declare its content type and codec: this one decodes each input with
`json.loads` (fal's SDK hands it the bytes of a binary frame) and answers with `json.dumps`, which the
SDK sends as a text frame. Each answer says how many inputs the app has rendered in this process, so
a test sees an input rendered twice.
"""

from __future__ import annotations

import argparse
import itertools
import json
from typing import Any

import fal
import uvicorn

from realtime_server.local_app.server import build_asgi, create_gateway

APP = "local/json"


def make_json_app(session_timeout: float) -> type[fal.App]:
    renders = itertools.count(1)

    class JsonApp(fal.App, name="json"):  # type: ignore[no-untyped-call]
        @fal.realtime("/realtime", buffering=None, session_timeout=session_timeout, content_type="application/json",
                      decode_message=json.loads, encode_message=json.dumps)
        async def realtime(self, input: dict[str, Any]) -> dict[str, Any]:
            return {"prompt": input.get("prompt"), "seed": input.get("seed"), "renders": next(renders)}

    return JsonApp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--session-timeout", type=float, default=1.0)
    args = parser.parse_args()
    gateway = create_gateway({APP: build_asgi(make_json_app(args.session_timeout))})
    uvicorn.run(gateway, host="127.0.0.1", port=args.port, log_level="warning", ws="websockets-sansio")


if __name__ == "__main__":
    main()
