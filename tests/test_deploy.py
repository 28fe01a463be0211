"""What an operator deploys, checked offline: alert rules and the dashboard's queries (Debian's promtool, over
the metrics a real relay exports), the Kubernetes manifests (kubernetes-validate), and the image's install and
start steps, run here as the Containerfile runs them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import kubernetes_validate
import yaml

from realtime_server.cli import free_port

from .conftest import SECRET
from .reliability import wait_ready
from .upstreams import FAULT_APPS, fault_upstream

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
METRIC = re.compile(r"\b(relay_[a-z_]+)")


def promtool(*args: str, cwd: Path = DEPLOY / "prometheus") -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: apt-get install prometheus (scripts/test does)"
    done = subprocess.run([path, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _exported(text: str) -> set[str]:
    """Every sample and family name a relay's /metrics declares (families with labels have no sample until used)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
        elif line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
        else:
            continue
        names |= {name, re.sub(r"_(bucket|count|sum|total)$", "", name)}
    return names


def test_alert_rules_pass_promtool() -> None:
    """`promtool check rules` accepts the alert rules and their unit tests fire the alerts they should."""
    assert "SUCCESS: 5 rules found" in promtool("check", "rules", "relay-alerts.yml")
    assert "SUCCESS" in promtool("test", "rules", "relay-alerts.test.yml")


async def test_dashboard_and_alerts_query_what_the_relay_exports(relay, tmp_path) -> None:
    """Every dashboard query is valid PromQL (promtool, as recording rules) and every relay_* metric the dashboard
    and the alerts name is one a real relay exports."""
    dashboard = json.loads((DEPLOY / "grafana" / "relay-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 15 and {p["title"] for p in dashboard["panels"]} >= {
        "Open connections", "Frames per second", "Bytes per second", "Input-to-frame latency",
        "Errors per second by code", "Live sessions and viewers", "Upstream reopens per second"}
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, expr in enumerate(exprs)]}]}
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules))
    assert f"SUCCESS: {len(exprs)} rules found" in promtool("check", "rules", "dashboard.yml", cwd=tmp_path)
    async with httpx.AsyncClient(base_url=relay.http) as http:
        exported = _exported((await http.get("/metrics")).text)
    alerts = (DEPLOY / "prometheus" / "relay-alerts.yml").read_text()
    named = {m for text in [*exprs, alerts] for m in METRIC.findall(text)}
    missing = {m for m in named if m not in exported and re.sub(r"_(bucket|total)$", "", m) not in exported}
    assert len(named) >= 12 and not missing, missing


def _manifests() -> list[dict]:
    return [doc for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_kubernetes_manifests_validate_against_the_schemas() -> None:
    """Every object validates strictly against the Kubernetes schemas (kubernetes-validate, offline)."""
    docs = _manifests()
    assert {doc["kind"] for doc in docs} == {
        "Deployment", "Service", "Ingress", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33.0", strict=True)


def test_kubernetes_deployment_fits_the_relay() -> None:
    """Readiness on /ready, liveness on /health, a preStop pause and a grace period that covers it plus
    RELAY_DRAIN_SECONDS; the ingress hashes on ?session= as deploy/nginx.conf does; PDB and HPA find the pods."""
    objects = {doc["kind"]: doc for doc in _manifests()}
    deployment = objects["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] >= pause + float(env["RELAY_DRAIN_SECONDS"]) + 5
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert env["RELAY_METRICS_PORT"] in {str(p["containerPort"]) for p in container["ports"]}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for kind in ("PodDisruptionBudget",):
        assert objects[kind]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert objects["Service"]["spec"]["selector"].items() <= labels.items()
    assert objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    nginx_key = re.search(r"hash (\$arg_session) consistent;", (DEPLOY / "nginx.conf").read_text())
    assert nginx_key is not None
    annotations = objects["Ingress"]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/upstream-hash-by"] == nginx_key.group(1)
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


async def test_container_install_and_start_steps_run(tmp_path) -> None:
    """The Containerfile's own steps, run here: install.sh installs the relay alone into a fresh virtualenv (no
    fal SDK, no test extras), start.sh starts it in front of an upstream; it answers /health and /ready, and
    SIGTERM stops it within its drain time."""
    containerfile = (DEPLOY / "container" / "Containerfile").read_text()
    assert re.search(r"^RUN install\.sh /src /opt/relay$", containerfile, re.M)
    assert re.search(r'^CMD \["start\.sh", "/opt/relay"\]$', containerfile, re.M)
    assert re.search(r"^USER 10001:10001$", containerfile, re.M)
    prefix = tmp_path / "relay"
    await asyncio.to_thread(
        subprocess.run, [str(DEPLOY / "container" / "install.sh"), str(ROOT), str(prefix)], check=True, timeout=900,
        env=os.environ | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}, stdout=subprocess.DEVNULL)
    installed = subprocess.run([str(prefix / "bin" / "pip"), "list", "--format=freeze"], check=True,
                               capture_output=True, text=True).stdout
    assert "fal-realtime-relay" in installed and "pytest" not in installed and "playwright" not in installed
    assert "fal==" not in installed  # relay only: the embedded app's SDK is an extra
    port = free_port()
    log = tmp_path / "relay.log"
    async with fault_upstream() as upstream:
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PORT": str(port), "RELAY_HOST": "127.0.0.1",
               "RELAY_SHARED_SECRET": SECRET, "RELAY_DRAIN_SECONDS": "2", "RELAY_LOG_LEVEL": "warning",
               "RELAY_UPSTREAM_URL": upstream, "RELAY_ALLOWED_APPS": ",".join(FAULT_APPS)}
        with log.open("wb") as out:
            relay = subprocess.Popen([str(DEPLOY / "container" / "start.sh"), str(prefix)], env=env,
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            await wait_ready(f"http://127.0.0.1:{port}", relay, log)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/health")).json() == {"status": "ok"}
                client = await http.get("/static/fal_realtime.js")  # static/ ships in the package itself
                assert client.status_code == 200 and "export { RealtimeClient } from" in client.text
            stopped = time.monotonic()
            relay.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(relay.wait, 15) == 0
            assert time.monotonic() - stopped < 2 + 5
        finally:
            if relay.poll() is None:
                os.killpg(relay.pid, signal.SIGKILL)
                relay.wait()
