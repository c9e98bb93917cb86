"""Label overlays (agent/label_overlay.py): labels set after create are reported merged
over Docker's, survive an agent restart, cannot touch gpuyard's own, and are dropped
with their container. Through the agent's HTTP API over the session's dockerd."""

from __future__ import annotations

from pathlib import Path

from support.dockerd import DockerServer

from gpuyard.agent.gpus import probe_gpus
from gpuyard.agent.label_overlay import FILE_NAME

from .builders import make_spec
from .conftest import run_agent


def test_labels_set_after_create_are_reported_and_survive_a_restart(
    dockerd: DockerServer, tmp_path: Path
) -> None:
    spec = make_spec(name="pool_busybox_0_0", labels={"pool": "true", "status": "available"})
    with run_agent(dockerd, tmp_path, "overlay-host", probe_gpus) as agent, agent.http() as api:
        created = api.post("/v1/containers", json=spec.model_dump(mode="json"))
        assert created.status_code == 201, created.text
        info = created.json()
        assert info["name"] == "pool_busybox_0_0"
        assert info["labels"]["status"] == "available"
        relabelled = api.put(
            f"/v1/containers/{info['id']}/labels",
            json={"labels": {"status": "assigned", "user_id": "u1"}},
        )
        assert relabelled.status_code == 200, relabelled.text
        assert relabelled.json()["labels"]["status"] == "assigned"
        # Docker's own labels are unchanged; the agent reports the overlay over them.
        assert agent.docker.containers.get(info["id"]).labels["status"] == "available"
        listed = {c["id"]: c for c in api.get("/v1/containers").json()["data"]}
        assert listed[info["id"]]["labels"]["user_id"] == "u1"
        assert listed[info["id"]]["labels"]["pool"] == "true"
        refused = api.put(
            f"/v1/containers/{info['id']}/labels",
            json={"labels": {"gpuyard.workload": "someone-else"}},
        )
        assert refused.status_code == 422
        unknown = api.put("/v1/containers/nope/labels", json={"labels": {"a": "b"}})
        assert unknown.status_code == 404
        assert (tmp_path / FILE_NAME).exists()
        # A fresh agent on the same data dir (a restart) reads the overlay back.
        with (
            run_agent(dockerd, tmp_path, "overlay-host", probe_gpus) as restarted,
            restarted.http() as again,
        ):
            seen = again.get(f"/v1/containers/{info['id']}").json()
            assert seen["labels"]["status"] == "assigned"
            assert seen["labels"]["user_id"] == "u1"
            agent.docker.containers.get(info["id"]).remove(force=True)
            assert again.get("/v1/containers").status_code == 200  # a full listing
            assert info["id"] not in (tmp_path / FILE_NAME).read_text("utf-8")
