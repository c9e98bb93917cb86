"""deploy/grafana/gpuyard.json and deploy/prometheus/prometheus.yml: the dashboard is a
well-formed Grafana dashboard, and every metric and label its PromQL targets name exists
in a real scrape of the control plane's /metrics (after placing work) or of an agent's
(over a real dockerd, on a real H100's NVML readings)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from agent.fake_nvml import FakeNvml
from factories.app import authed_client, make_context, make_settings, settle
from fastapi.testclient import TestClient
from fixtures.gpu_h100 import linux_nvidia_h100_80g_nvml_busy
from prometheus_client.parser import text_string_to_metric_families
from support.dockerd import DockerServer

from gpuyard.agent.app import create_agent_app
from gpuyard.agent.gpus import GpuReport, read_nvml
from gpuyard.agent.settings import AgentSettings

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "gpuyard.json"
PROMETHEUS = REPO / "deploy" / "prometheus" / "prometheus.yml"
AGENT_TOKEN = "agent-token-" + "a1" * 12
PANEL_TYPES = {"row", "timeseries", "stat", "bargauge", "gauge", "table", "heatmap"}
#: Labels Prometheus itself adds to every series (and histograms' buckets).
TARGET_LABELS = {"instance", "job", "le"}
_METRIC = re.compile(r"\bgpuyard_[a-zA-Z0-9_]+\b")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"\{([^}]*)\}")
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _targets() -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target


def _labels_of(text: str) -> dict[str, set[str]]:
    """Metric and sample names of a scrape -> the label names their samples carry."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for name in (family.name, sample.name):
                found.setdefault(name, set()).update(sample.labels)
    return found


@pytest.fixture(scope="module")
def scraped(dockerd: DockerServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The label names of every metric in a real scrape of the control plane (the demo
    fleet, work placed and queued) and of an agent over the session's dockerd."""
    base = tmp_path_factory.mktemp("monitoring")
    ctx = make_context(make_settings(base / "data", None))
    try:
        with authed_client(ctx) as client:
            # The last, a gang larger than the fleet, stays queued (one 16-GPU replica
            # would be refused at submit: no server could ever hold it).
            for gpu, replicas in ((8, 1), (8, 1), (0.5, 1), (8, 64)):
                body = {"image": "busybox", "cpu": 1, "ram_gb": 1, "gpu": gpu}
                if replicas > 1:
                    body |= {"replicas": replicas, "gang": True}
                assert client.post("/api/v1/workloads", json=body).status_code == 201
            settle(ctx)
            server = client.get("/metrics")
            assert server.status_code == 200, server.text
    finally:
        ctx.db.dispose()

    def busy_h100() -> GpuReport:
        return read_nvml(FakeNvml(linux_nvidia_h100_80g_nvml_busy()))

    settings = AgentSettings(token=AGENT_TOKEN, name="dash", data_dir=base / "agent")  # type: ignore[arg-type]
    daemon = docker.DockerClient(base_url=dockerd.url, timeout=60)
    with TestClient(create_agent_app(settings, client=daemon, gpu_probe=busy_h100)) as agent:
        host = agent.get("/metrics", headers={"Authorization": f"Bearer {AGENT_TOKEN}"})
        assert host.status_code == 200, host.text
    daemon.close()
    return {**_labels_of(server.text), **_labels_of(host.text)}


def test_the_dashboard_is_a_well_formed_grafana_dashboard() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "gpuyard-fleet"
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["schemaVersion"] >= 36
    (variable,) = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for row in range(grid["y"], grid["y"] + grid["h"]):
            for column in range(grid["x"], grid["x"] + grid["w"]):
                assert (row, column) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((row, column))
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_every_target_names_metrics_and_labels_a_scrape_has(
    scraped: dict[str, set[str]],
) -> None:
    checked = 0
    for title, target in _targets():
        expr = target["expr"]
        metrics = set(_METRIC.findall(expr))
        assert metrics, f"{title}: {expr} names no gpuyard metric"
        missing = sorted(m for m in metrics if m not in scraped)
        assert not missing, f"{title}: {missing} are in no scrape of /metrics"
        available = set().union(*(scraped[m] for m in metrics)) | TARGET_LABELS
        used = {
            label.strip()
            for group in _GROUPING.findall(expr)
            for label in group.split(",")
            if label.strip()
        }
        used |= {
            matcher.split("=")[0].rstrip("!~").strip()
            for block in _MATCHER.findall(expr)
            for matcher in block.split(",")
            if matcher.strip()
        }
        used |= set(_LEGEND.findall(target.get("legendFormat", "")))
        assert used <= available, f"{title}: labels {sorted(used - available)} exist nowhere"
        checked += 1
    assert checked >= 25


def test_the_prometheus_example_scrapes_each_process_with_a_token() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"gpuyard-api", "gpuyard-worker"} <= set(jobs)
    assert any(name.startswith("gpuyard-agent") for name in jobs)
    for job in jobs.values():
        assert job["metrics_path"] == "/metrics"
        assert job["authorization"]["type"] == "Bearer"
        assert job["authorization"]["credentials_file"].startswith("/etc/prometheus/")
        timeout = job.get("scrape_timeout", config["global"]["scrape_timeout"])
        interval = job.get("scrape_interval", config["global"]["scrape_interval"])
        assert _seconds(timeout) < _seconds(interval), job["job_name"]


def _seconds(duration: str) -> int:
    assert re.fullmatch(r"\d+s", duration), duration
    return int(duration[:-1])
