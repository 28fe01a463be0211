"""`python -m realtime_server.local_app --port N`: serve the embedded fal apps on 127.0.0.1."""

from __future__ import annotations

import argparse

import uvicorn

from .echo import make_echo_app
from .preview import make_preview_app
from .server import build_asgi, create_gateway


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--session-timeout", type=float, default=5.0,
        help="seconds without input before a session ends with x-fal-error TIMEOUT, as fal's servers do",
    )
    args = parser.parse_args(argv)
    gateway = create_gateway({
        "local/preview": build_asgi(make_preview_app(args.session_timeout)),
        "local/echo": build_asgi(make_echo_app(args.session_timeout)),  # transport-only upstream for realtime-bench
    })
    uvicorn.run(gateway, host=args.host, port=args.port, log_level="warning", ws="websockets-sansio")


if __name__ == "__main__":
    main()
