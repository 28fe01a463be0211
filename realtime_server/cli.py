"""`realtime-server`: start the relay, and the embedded app on loopback when there is no FAL_KEY.

The relay itself needs no fal SDK: it imports only its own dependencies. The embedded app runs in
a child process and needs the `embedded` extra (fal's SDK, Pillow), checked before it starts.
"""

from __future__ import annotations

import importlib.util
import logging
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn

from .app import create_app
from .serving import uvicorn_config
from .settings import Settings

logger = logging.getLogger("realtime_server")
LOCAL_APP_START_TIMEOUT = 60.0
EMBEDDED_MODULES = {"fal": "fal's SDK", "PIL": "Pillow"}


class EmbeddedAppUnavailable(RuntimeError):
    """Raised when the embedded app is needed and its packages (the `embedded` extra) are not installed."""


def check_embedded_app() -> None:
    """Raise `EmbeddedAppUnavailable`, saying what to install, unless the embedded app can start."""
    missing = [name for module, name in EMBEDDED_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise EmbeddedAppUnavailable(
            f"the embedded app (local/preview, served when neither FAL_KEY nor RELAY_UPSTREAM_URL is set) needs "
            f"{' and '.join(missing)}, not installed here. Install them with "
            f"pip install 'fal-realtime-relay[embedded]' (in a checkout: pip install -e '.[embedded]'), "
            f"or set FAL_KEY to use fal's cloud, or RELAY_UPSTREAM_URL to use any upstream with fal's paths."
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_app(session_timeout: float = 5.0) -> Iterator[str]:
    """Run the embedded fal app as a child on a free loopback port; yield its ws:// base URL."""
    check_embedded_app()
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "realtime_server.local_app", "--port", str(port),
         "--session-timeout", str(session_timeout)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + LOCAL_APP_START_TIMEOUT
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"embedded app exited with code {child.returncode} before it was ready")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("embedded app did not become ready in time") from None
                time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}"
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


def serve(settings: Settings) -> None:
    uvicorn.Server(uvicorn_config(create_app(settings), settings)).run()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    # uvicorn drains on SIGTERM, then re-raises the signal with the previous handler in place:
    # this one turns it into SystemExit so `local_app()` still stops the embedded app.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        settings = Settings.from_environ()
    except ValueError as exc:
        sys.exit(f"realtime-server: {exc}")
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not settings.needs_local_app:
        serve(settings)
        return
    try:
        check_embedded_app()
    except EmbeddedAppUnavailable as exc:
        raise SystemExit(f"realtime-server: {exc}") from None
    with local_app() as url:
        logger.info("embedded app local/preview serving at %s (no FAL_KEY set)", url)
        serve(settings.with_upstream(url))


if __name__ == "__main__":
    main()
