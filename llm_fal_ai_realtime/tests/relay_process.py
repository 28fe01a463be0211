"""A relay of the test's own, started and stopped inside an Odoo test.

``scripts/test-odoo`` exports the relay's Python and the project root; the relay runs the
embedded ``local/preview`` app with the tests' shared secret, on loopback, admitting browsers
from Odoo's test server.
"""

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time

import requests

from .common import RELAY_SECRET_ENV

RELAY_PYTHON_ENV = "FAL_REALTIME_TEST_RELAY_PYTHON"
RELAY_ROOT_ENV = "FAL_REALTIME_TEST_RELAY_ROOT"
START_TIMEOUT = 90.0


def free_port():
    """A loopback port nobody listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RelayProcess:
    """One relay process on a given port; ``start()`` waits until it answers ``/health``."""

    def __init__(self, test_case, port, allowed_origins, allowed_apps=None):
        python, root = os.environ.get(RELAY_PYTHON_ENV), os.environ.get(RELAY_ROOT_ENV)
        test_case.assertTrue(python and root, f"{RELAY_PYTHON_ENV}/{RELAY_ROOT_ENV} are not set: run the Odoo "
                             "tests through scripts/test-odoo")
        self.python, self.root, self.port = python, root, port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("FAL_KEY", "RELAY_UPSTREAM_URL", "RELAY_ALLOWED_APPS")}
        self.env.update({
            "PYTHONPATH": root, "RELAY_HOST": "127.0.0.1", "PORT": str(port),
            "RELAY_SHARED_SECRET": os.environ[RELAY_SECRET_ENV], "RELAY_ALLOWED_ORIGINS": ",".join(allowed_origins),
        })
        if allowed_apps:
            self.env["RELAY_ALLOWED_APPS"] = ",".join(allowed_apps)
        self.process = None
        self.log = None

    def start(self):
        self.log = tempfile.TemporaryFile()
        # Its own process group: the relay's embedded app (a child) is stopped with it.
        self.process = subprocess.Popen([self.python, "-m", "realtime_server.cli"], cwd=self.root, env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the relay exited with {self.process.returncode}: {self.output()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.2)
        raise AssertionError(f"the relay did not answer /health within {START_TIMEOUT} s: {self.output()}")

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):  # the embedded app, should it outlive the relay
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.log:
            self.log.close()
