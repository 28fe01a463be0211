"""The measured servers, each its own process, and the readings taken from them.

The upstream is the relay's embedded gateway (`python -m realtime_server.local_app`), serving
`local/echo` and `local/preview` with fal's SDK. The relay runs as `python -m realtime_server.cli`, configured
through the environment like a deployment, so its CPU seconds and peak RSS are its own. nginx runs
from a generated config (see `nginx.py`). `ProcessProbe` reads CPU time and peak RSS from /proc.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from .nginx import NginxConfig, find_nginx

logger = logging.getLogger(__name__)
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
BENCH_KEY = "bench-" + secrets.token_hex(8)


class ProcessProbe:
    """CPU seconds and peak RSS of a process and its children (nginx: master plus workers)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self.process, *self.process.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def rss_bytes(self) -> int:
        total = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def reset_peak(self) -> bool:
        """Reset the kernel's peak-RSS mark (VmHWM), so `peak_rss_bytes` covers what follows."""
        ok = True
        for proc in self._tree():
            try:
                Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
            except OSError:
                ok = False
        return ok

    def peak_rss_bytes(self) -> int:
        total = 0
        for proc in self._tree():
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
            except (OSError, ValueError):
                continue
        return total


@dataclass
class Route:
    """A way from the load generator to the echo app, and the process that sits on it (if any)."""

    name: str
    base_url: str | None  # ws://host:port, or None when the route is unavailable
    headers: dict[str, str] = field(default_factory=dict)
    probe: ProcessProbe | None = None
    reason: str = ""  # why the route is unavailable
    secret: str | None = field(default=None, repr=False)  # RELAY_SHARED_SECRET: the fan-out mints tickets with it

    @property
    def available(self) -> bool:
        return self.base_url is not None

    def url(self, app: str) -> str:
        return f"{self.base_url}/{app}/realtime"

    def metric(self, name: str) -> float | None:
        """One unlabelled counter from the route's Prometheus `/metrics`; None when it has none."""
        if self.base_url is None:
            return None
        try:
            with urllib.request.urlopen(self.base_url.replace("ws://", "http://", 1) + "/metrics", timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _probe_port(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def _probe_health(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
        pass


def _wait_for(port: int, child: subprocess.Popen[bytes], what: str, probe: Callable[[int], None] = _probe_port) -> None:
    """Until `probe(port)` succeeds (the port listens, or /health answers); the child's early exit is an error."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if child.poll() is not None:
            raise RuntimeError(f"{what} exited with code {child.returncode} before it was ready")
        try:
            probe(port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} was not ready on port {port} within {START_TIMEOUT:g} s") from None
            time.sleep(0.05)


def _stop(child: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if child.poll() is None:
        child.send_signal(sig)
    try:
        child.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def upstream(session_timeout: float = 30.0) -> Iterator[tuple[str, ProcessProbe]]:
    """The embedded gateway in a child process; yields its ws:// base URL and a probe on it."""
    port = free_port()
    child = subprocess.Popen([sys.executable, "-m", "realtime_server.local_app", "--port", str(port),
                              "--session-timeout", str(session_timeout)], stdout=subprocess.DEVNULL)
    try:
        _wait_for(port, child, "the embedded gateway (pip install 'fal-realtime-relay[embedded]')", _probe_health)
        yield f"ws://127.0.0.1:{port}", ProcessProbe(child.pid)
    finally:
        _stop(child)


@contextlib.contextmanager
def relay(upstream_url: str, apps: str = "local/echo,local/preview", module: str = "realtime_server.cli",
          log_path: Path | None = None, name: str = "relay", dev_mode: bool = False) -> Iterator[Route]:
    """The relay as a deployment runs it, with limits opened wide enough not to shape the load.

    `module` may name another server configured the same way (the bare forwarder, `floor`).
    `dev_mode`: no credentials (no shared secret, no API keys), so the relay hands loopback clients
    tickets at `/dev/ticket`.
    """
    port = free_port()
    secret = None if dev_mode else secrets.token_urlsafe(32)
    # Limits opened wide, the viewer and session limits too (the fan-out).
    env = os.environ | {
        "RELAY_UPSTREAM_URL": upstream_url, "RELAY_ALLOWED_APPS": apps,
        "RELAY_HOST": "127.0.0.1", "PORT": str(port),
        "RELAY_LOG_LEVEL": "warning", "RELAY_MAX_INPUTS_PER_SECOND": "1000000",
        "RELAY_MAX_CONNECTIONS_PER_USER": "100000", "RELAY_MAX_CONNECTIONS": "100000",
        "RELAY_MAX_VIEWERS_PER_SESSION": "100000", "RELAY_MAX_SESSIONS_PER_USER": "100000",
    }
    for credential in ("FAL_KEY", "RELAY_SHARED_SECRET", "RELAY_API_KEYS"):
        env.pop(credential, None)
    if secret is not None:  # API keys for the plain routes; the secret for live-session tickets (the fan-out)
        env |= {"RELAY_SHARED_SECRET": secret, "RELAY_API_KEYS": BENCH_KEY}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    child = subprocess.Popen([sys.executable, "-m", module], env=env, stdout=log, stderr=log)
    try:
        _wait_for(port, child, f"the {name} route ({module})", _probe_health)
        headers = {} if dev_mode else {"Authorization": f"Key {BENCH_KEY}"}
        yield Route(name, f"ws://127.0.0.1:{port}", headers, ProcessProbe(child.pid), secret=secret)
    finally:
        _stop(child)
        if log_path:
            log.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def nginx(upstream_url: str, buffer_bytes: int, binary: str | None = None) -> Iterator[Route]:
    """nginx on loopback proxying to the gateway; an unavailable `Route` when nginx is not installed."""
    found = find_nginx(binary)
    if found is None:
        missing = binary or "nginx"
        yield Route("nginx", None, reason=f"{missing} not found (Debian: apt-get install nginx); route skipped")
        return
    upstream_port = int(upstream_url.rsplit(":", 1)[1])
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="realtime-bench-nginx-") as tmp:
        config = NginxConfig(Path(tmp), port, upstream_port, buffer_bytes).write()
        child = subprocess.Popen([found, "-p", tmp, "-c", str(config)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        try:
            try:
                _wait_for(port, child, "nginx")
            except RuntimeError as exc:
                ended = child.poll() is not None and child.stderr is not None
                stderr = child.stderr.read().decode(errors="replace") if ended and child.stderr else ""
                yield Route("nginx", None, reason=f"{exc}: {stderr.strip()[:300]}")
                return
            yield Route("nginx", f"ws://127.0.0.1:{port}", probe=ProcessProbe(child.pid))
        finally:
            _stop(child, signal.SIGQUIT)
