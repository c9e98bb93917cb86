"""The CLI's output and errors through a real served app (SQLite, uvicorn on 127.0.0.1):
80-column tables, short ids and prefix matching, -o json|yaml, -q, errors that name the
flag, the not-logged-in hint, --version, run --wait, describe and events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from factories.app import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    admin_caller,
    make_context,
    make_settings,
    mint_token,
)
from factories.live import served
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from typer.testing import CliRunner

from gpuyard import __version__
from gpuyard.api.app import create_app
from gpuyard.cli import client_commands
from gpuyard.cli.main import app
from gpuyard.cli.output import SHORT_ID_LENGTH, human_duration, short_ids
from gpuyard.log import configure_logging
from gpuyard.services.context import ServiceContext

#: Never placed, with a long "why it waits": a gang of five whole servers on a fleet of
#: four (each replica fits one, so submit does not refuse it as something that can never
#: run).
NEVER_PLACED = ("--gpu", "8", "--replicas", "5", "--gang")


@pytest.fixture
def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> Iterator[tuple[CliRunner, str]]:
    """A served app with its loops running (the scheduler places what the CLI submits),
    the CLI pointed at it with an admin token, and an 80-column terminal."""
    # The served app logs on stderr as `gpuyard serve` does, not into the CLI's stdout.
    configure_logging("WARNING")
    ctx: ServiceContext = make_context(make_settings(tmp_path / "data", None, run_loops=True))
    token = mint_token(ctx, admin_caller(ctx).user_id)
    monkeypatch.setattr(client_commands.console, "width", 80)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    try:
        with served(create_app(ctx)) as url:
            monkeypatch.setenv("GPUYARD_URL", url)
            monkeypatch.setenv("GPUYARD_TOKEN", token)
            yield CliRunner(), url
    finally:
        ctx.db.dispose()


def invoke(runner: CliRunner, *args: str) -> tuple[int, str]:
    """Exit code and what a terminal shows (stdout and stderr together)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def invoke_stdout(runner: CliRunner, *args: str) -> str:
    """What a script piping stdout reads (the command must succeed)."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_ps_fits_80_columns_with_a_long_reason_and_its_short_id_resolves(
    cli: tuple[CliRunner, str],
) -> None:
    runner, _ = cli
    out = invoke_stdout(runner, "run", "busybox", "--name", "too-big", *NEVER_PLACED, "-o", "json")
    workload_id = json.loads(out)["id"]
    code, out = invoke(runner, "run", "busybox", "--name", "small", "--wait", "--timeout", "30")
    assert code == 0, out  # the scheduler has run since too-big arrived: it has its reason
    workload = json.loads(invoke_stdout(runner, "describe", workload_id, "-o", "json"))
    assert len(workload["reason"]) > 40, workload["reason"]
    code, table = invoke(runner, "ps")
    assert code == 0, table
    lines = table.rstrip("\n").splitlines()
    assert all(cell_len(line) <= 80 for line in lines), table
    header = lines[0].split()
    assert header[:2] == ["NAME", "STATUS"]
    assert header[-1] == "ID"
    too_big = next(line for line in lines if line.startswith("too-big"))
    assert "…" in too_big  # the reason is cut on its one line, not wrapped
    assert len(lines) == 3  # header + one line per workload
    short = too_big.split()[-1]
    assert len(short) == SHORT_ID_LENGTH
    assert workload["id"].startswith(short)
    code, described = invoke(runner, "describe", short)
    assert code == 0, described
    assert f"Id:          {workload['id']}" in described
    assert "Events:" in described
    assert "pending" in described


def test_json_yaml_and_quiet_are_the_api_objects_and_full_ids(
    cli: tuple[CliRunner, str],
) -> None:
    runner, _ = cli
    for name in ("a-1", "a-2"):
        # --wait: running, so nothing changes between the listings below
        args = ["--name", name, "--env", "K=v", "-p", "8080", "--wait"]
        code, out = invoke(runner, "run", "busybox", *args)
        assert code == 0, out
    listed = json.loads(invoke_stdout(runner, "ps", "-o", "json"))
    assert sorted(w["name"] for w in listed) == ["a-1", "a-2"]
    assert [w["env"] for w in listed] == [{"K": "v"}] * 2
    assert [w["ports"][0]["container_port"] for w in listed] == [8080] * 2
    assert yaml.safe_load(invoke_stdout(runner, "ps", "-o", "yaml")) == listed
    quiet = invoke_stdout(runner, "ps", "-q")
    assert sorted(quiet.split()) == sorted(w["id"] for w in listed)
    assert len(invoke_stdout(runner, "servers", "-q").split()) == 4  # the demo cluster
    code, out = invoke(runner, "servers", "-o", "wide")
    assert code == 0
    assert "CLUSTER" in out


def test_a_prefix_stops_the_workload_and_a_wrong_one_is_404(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    out = invoke_stdout(runner, "run", "busybox", "--name", "victim", "-o", "json")
    workload_id = json.loads(out)["id"]
    code, out = invoke(runner, "stop", workload_id[:6])
    assert code == 0, out
    assert "victim stopped" in out
    missing = "f" * 12 if not workload_id.startswith("f") else "0" * 12
    code, out = invoke(runner, "stop", missing)
    assert code == 1
    assert f"no workload with id, id prefix or name {missing!r}" in out


def test_errors_name_the_flag_not_the_api_field(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    code, out = invoke(runner, "run", "busybox", "--ram", "-1")
    assert code == 1
    assert "--ram:" in out
    assert "ram_gb" not in out
    code, out = invoke(runner, "run", "busybox", "--port", "0")
    assert code == 1
    assert "--port (#1):" in out
    code, out = invoke(runner, "run", "busybox", "--env", "novalue")
    assert code == 2
    assert "KEY=VALUE" in out
    code, out = invoke(runner, "run", "busybox", "--gpu", "1", "--gpu-memory", "10")
    assert code == 1
    assert "--gpu-memory:" in out
    assert "only with a share" in out
    code, out = invoke(runner, "run", "busybox", "--gpu", "0.33")
    assert code == 1
    assert "--gpu:" in out
    assert "0.05-0.95 in steps of 0.05" in out


def test_not_logged_in_says_run_gpuyard_login(
    cli: tuple[CliRunner, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, _ = cli
    monkeypatch.delenv("GPUYARD_TOKEN")
    code, out = invoke(runner, "ps")
    assert code == 4
    assert "not logged in: run `gpuyard login EMAIL`" in out
    monkeypatch.setenv("GPUYARD_TOKEN", "gpy_not_a_real_token")
    code, out = invoke(runner, "ps")
    assert code == 4
    assert "session has ended" in out


def test_unreachable_server_exits_3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("GPUYARD_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    code, out = invoke(CliRunner(), "ps")
    assert code == 3
    assert "cannot reach gpuyard at http://127.0.0.1:9" in out


def test_version_option_and_events(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    code, out = invoke(runner, "--version")
    assert code == 0
    assert out.strip() == f"gpuyard {__version__}"
    code, out = invoke(runner, "run", "busybox", "--name", "evt", "--wait", "--timeout", "30")
    assert code == 0, out
    assert "running" in out
    out = invoke_stdout(runner, "events", "evt", "-o", "json")
    statuses = [e["to_status"] for e in json.loads(out)]
    assert statuses[0] == "pending"
    assert statuses[-1] == "running"


def test_run_wait_gives_up_after_its_timeout_with_exit_1(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    code, out = invoke(runner, "run", "busybox", *NEVER_PLACED, "--wait", "--timeout", "1")
    assert code == 1
    assert "still pending after 1s" in out


@given(st.sets(st.text("0123456789abcdef", min_size=32, max_size=32), max_size=40))
def test_short_ids_are_unique_prefixes(ids: set[str]) -> None:
    shortest = short_ids(ids)
    assert set(shortest) == ids
    for full, short in shortest.items():
        assert len(short) >= SHORT_ID_LENGTH
        assert full.startswith(short)
        assert [other for other in ids if other.startswith(short)] == [full]


@given(st.floats(min_value=0, max_value=10**8))
def test_human_durations_are_short(seconds: float) -> None:
    text = human_duration(seconds)
    assert len(text) <= 7
    assert text[-1] in "smhd"


def test_clusters_are_created_listed_used_by_name_and_deleted(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    code, out = invoke(runner, "clusters", "create", "gpu-hosts", "--kind", "docker")
    assert code == 0, out
    assert "created docker cluster gpu-hosts" in out
    listed = json.loads(invoke_stdout(runner, "clusters", "ls", "-o", "json"))
    assert sorted((c["name"], c["kind"]) for c in listed) == [
        ("demo", "simulated"),
        ("gpu-hosts", "docker"),
    ]
    code, out = invoke(runner, "clusters", "create", "bad name", "--kind", "docker")
    assert code == 1
    assert "error NAME: String should match pattern" in out  # an argument here, not --name
    code, out = invoke(runner, "clusters", "create", "k", "--kind", "nomad")
    assert code == 1
    assert "--kind:" in out
    # server add finds the cluster by name: the refusal is about the agent, not the cluster
    code, out = invoke(
        runner,
        "server",
        "add",
        "gpu-7",
        "--cluster",
        "gpu-hosts",
        "--agent-url",
        "http://127.0.0.1:9",
        "--agent-token",
        "t" * 32,
    )
    assert code == 1
    assert "cluster" not in out.lower()
    code, out = invoke(runner, "run", "busybox", "--cluster", "demo", "--wait", "--timeout", "30")
    assert code == 0, out
    code, out = invoke(runner, "clusters", "rm", "gpu-hosts")
    assert code == 0, out
    assert [
        c["name"] for c in json.loads(invoke_stdout(runner, "clusters", "ls", "-o", "json"))
    ] == ["demo"]
    code, out = invoke(runner, "run", "busybox", "--cluster", "gpu-hosts")
    assert code == 1
    assert "no cluster with name, id or id prefix 'gpu-hosts'" in out


def test_the_help_fits_one_screen_with_one_line_per_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) <= 55, result.output
    commands = [line for line in lines if line.startswith("│ ") and not line.startswith("│ -")]
    assert len(commands) >= 25  # every command listed...
    assert all(line.rstrip().endswith("│") for line in commands)
    continued = [line for line in commands if line.startswith("│    ")]
    assert continued == [], "a command's description wraps"
    assert all(len(line.split()) > 2 for line in commands)  # ...each with its description
    panels = [line.split("─")[1].strip() for line in lines if line.startswith("╭─")]
    assert panels == ["Options", "Workloads", "Fleet", "Account", "Processes"]
    assert "completion" in result.output


def test_contexts_keep_one_login_per_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    configure_logging("WARNING")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("GPUYARD_URL", raising=False)
    monkeypatch.delenv("GPUYARD_TOKEN", raising=False)
    # A credentials file of the earlier single-login format reads as context "default".
    old = tmp_path / "config" / "gpuyard" / "credentials.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"url": "http://127.0.0.1:9", "token": "gpy_old"}))
    runner = CliRunner()
    contexts = [make_context(make_settings(tmp_path / name, None)) for name in ("a", "b")]
    try:
        with served(create_app(contexts[0])) as url_a, served(create_app(contexts[1])) as url_b:
            for name, url in (("lab", url_a), ("prod", url_b)):
                code, out = invoke(
                    runner, "login", ADMIN_EMAIL, "--password", ADMIN_PASSWORD,
                    "--url", url, "--context", name,
                )  # fmt: skip
                assert code == 0, out
            listed = json.loads(invoke_stdout(runner, "context", "ls", "-o", "json"))
            assert [(c["name"], c["current"], c["logged_in"]) for c in listed] == [
                ("default", False, True),
                ("lab", False, True),
                ("prod", True, True),
            ]
            assert "gpy_" not in invoke_stdout(runner, "context", "ls")  # tokens never shown
            invoke_stdout(runner, "clusters", "create", "only-on-prod", "--kind", "docker")
            assert invoke_stdout(runner, "context", "use", "lab").startswith("now using lab")
            names = json.loads(invoke_stdout(runner, "clusters", "ls", "-o", "json"))
            assert [c["name"] for c in names] == ["demo"]  # lab's, not prod's
            monkeypatch.setenv("GPUYARD_CONTEXT", "prod")  # one command's choice
            names = json.loads(invoke_stdout(runner, "clusters", "ls", "-o", "json"))
            assert sorted(c["name"] for c in names) == ["demo", "only-on-prod"]
            monkeypatch.delenv("GPUYARD_CONTEXT")
            assert invoke_stdout(runner, "logout").strip() == "logged out"
            code, out = invoke(runner, "ps")
            assert code == 4
            assert "not logged in" in out
            listed = json.loads(invoke_stdout(runner, "context", "ls", "-o", "json"))
            assert [c["logged_in"] for c in listed] == [True, False, True]
            code, out = invoke(runner, "context", "use", "nowhere")
            assert code == 1
            assert "no context 'nowhere' (saved: default, lab, prod)" in out
            assert invoke_stdout(runner, "context", "rm", "default").strip() == "forgot default"
    finally:
        for ctx in contexts:
            ctx.db.dispose()
    assert old.stat().st_mode & 0o777 == 0o600


def test_completion_scripts_and_completing_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["completion", "bash"])
    assert result.exit_code == 0, result.output
    assert "_GPUYARD_COMPLETE=complete_bash" in result.output
    monkeypatch.setenv("_GPUYARD_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "gpuyard clu")
    monkeypatch.setenv("COMP_CWORD", "1")
    completed = CliRunner().invoke(app, [], prog_name="gpuyard")
    assert completed.output.split() == ["clusters"]


def test_admin_commands_servers_users_teams_tokens_and_audit(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    server = json.loads(invoke_stdout(runner, "servers", "-o", "json"))[0]
    name = server["name"]
    assert invoke_stdout(runner, "server", "drain", name).strip() == f"{name} draining"
    described = invoke_stdout(runner, "server", "describe", server["id"][:8])
    assert f"Name:        {name}" in described
    assert "Status:      draining" in described
    history = json.loads(invoke_stdout(runner, "server", "events", name, "-o", "json"))
    assert history[0]["to_status"] == "draining"
    assert invoke_stdout(runner, "server", "online", name).strip() == f"{name} online"
    code, out = invoke(runner, "server", "describe", "no-such-server")
    assert code == 1
    assert "no server with id, id prefix or name 'no-such-server'" in out

    code, out = invoke(runner, "invite", "dev@example.com")
    assert code == 0, out
    [pending] = json.loads(
        invoke_stdout(runner, "invites", "ls", "--status", "pending", "-o", "json")
    )
    assert pending["email"] == "dev@example.com"
    assert "code" not in pending
    revoked = invoke_stdout(runner, "invites", "rm", pending["id"][:8]).strip()
    assert revoked == "revoked the invite for dev@example.com"
    assert (
        json.loads(invoke_stdout(runner, "invites", "ls", "--status", "pending", "-o", "json"))
        == []
    )
    code, out = invoke(runner, "invites", "ls", "--status", "lost")
    assert code == 1
    assert "--status:" in out
    users = json.loads(invoke_stdout(runner, "users", "ls", "-o", "json"))
    assert [u["email"] for u in users] == ["admin@example.com"]  # invited, not registered
    code, out = invoke(runner, "users", "set", "admin@example.com", "--role", "wizard")
    assert code == 1
    assert "--role:" in out

    made = invoke_stdout(runner, "teams", "create", "ml", "--gpu", "4", "--ram", "256")
    assert "created team ml" in made
    assert "(quota gpu 4, ram 256)" in made
    assert invoke_stdout(runner, "teams", "quota", "ml", "--gpu", "8").strip() == "ml quota gpu 8"
    assert invoke_stdout(runner, "teams", "quota", "ml", "--none").strip() == "ml quota -"
    code, out = invoke(runner, "teams", "quota", "ml", "--gpu", "-1")
    assert code == 1
    assert "--gpu/--cpu/--ram" in out
    assert invoke_stdout(runner, "teams", "add", "ml", "admin@example.com").strip() == (
        "admin@example.com added to ml"
    )
    [team] = json.loads(invoke_stdout(runner, "teams", "ls", "-o", "json"))
    assert [m["email"] for m in team["members"]] == ["admin@example.com"]

    token = invoke_stdout(runner, "tokens", "create", "ci", "--days", "7").strip()
    assert token.startswith("gpy")
    [listed] = json.loads(invoke_stdout(runner, "tokens", "ls", "-o", "json"))
    assert listed["name"] == "ci"
    assert token.startswith(listed["display_prefix"])
    assert token not in invoke_stdout(runner, "tokens", "ls")
    assert invoke_stdout(runner, "tokens", "rm", "ci").strip() == "revoked ci"
    assert json.loads(invoke_stdout(runner, "tokens", "ls", "-o", "json")) == []

    actions = [e["action"] for e in json.loads(invoke_stdout(runner, "audit", "ls", "-o", "json"))]
    assert actions[:2] == ["token.revoke", "token.create"]  # newest first
    teams_only = json.loads(invoke_stdout(runner, "audit", "ls", "--action", "team.", "-o", "json"))
    assert teams_only
    assert {e["action"].split(".")[0] for e in teams_only} == {"team"}


def test_apply_creates_updates_by_name_is_idempotent_and_delete_removes(
    cli: tuple[CliRunner, str], tmp_path: Path
) -> None:
    runner, _ = cli
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "a.yaml").write_text(
        "name: trainer\nimage: pytorch/pytorch:2.4\ncpu: 2\nram_gb: 8\ngpu: 1\n"
        "env: {MODE: fast}\nports: [8080]\n---\n"
        "name: notebook\nimage: busybox\ngpu: 0.5\ngpu_memory_gb: 4\n---\n"
    )
    (manifests / "notes.txt").write_text("not a manifest")
    code, out = invoke(runner, "apply", "-f", str(manifests))
    assert code == 0, out
    assert "trainer created" in out
    assert "notebook created" in out
    code, out = invoke(runner, "apply", "-f", str(manifests))
    assert code == 0, out
    assert out.splitlines() == ["trainer unchanged", "notebook unchanged"]  # idempotent
    assert len(json.loads(invoke_stdout(runner, "ps", "-o", "json"))) == 2

    (manifests / "a.yaml").write_text(
        "name: trainer\nimage: pytorch/pytorch:2.4\ncpu: 4\nram_gb: 8\ngpu: 1\npriority: 4\n"
        "env: {MODE: fast}\nports: [8080]\n---\nname: notebook\nimage: busybox:1.37\ngpu: 0.5\n"
        "gpu_memory_gb: 6\n"
    )
    code, out = invoke(runner, "apply", "-f", str(manifests / "a.yaml"))
    assert code == 1  # one of the two could not be applied
    assert "trainer configured (cpu, priority)" in out
    assert "cannot change image, gpu_memory_gb of a live workload" in out
    trainer = json.loads(invoke_stdout(runner, "describe", "trainer", "-o", "json"))
    assert (trainer["cpu"], trainer["priority"]) == (4, 4)

    bad = tmp_path / "bad.yaml"
    bad.write_text("image: busybox\n")
    code, out = invoke(runner, "apply", "-f", str(bad))
    assert code == 2
    assert "needs a name" in out
    bad.write_text("name: x\ncpu: -3\n")
    code, out = invoke(runner, "apply", "-f", str(bad))
    assert code == 1
    assert "error cpu:" in out  # the YAML key, not --cpu

    code, out = invoke(runner, "delete", "-f", str(manifests))
    assert code == 0, out
    assert out.splitlines() == ["trainer deleted", "notebook deleted"]
    code, out = invoke(runner, "delete", "-f", str(manifests))
    assert code == 0, out
    assert "trainer not found (nothing to delete)" in out


def test_top_once_shows_totals_the_queue_head_and_every_server(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    code, out = invoke(runner, "run", "busybox", "--name", "two", "--gpu", "2", "--wait")
    assert code == 0, out
    invoke_stdout(runner, "run", "busybox", "--name", "huge", *NEVER_PLACED)
    view = invoke_stdout(runner, "top", "--once")
    lines = view.splitlines()
    assert lines[0].startswith("servers 4/4 online   GPUs 2/32 allocated   running 1")
    assert "waiting 1" in lines[0]
    assert lines[1].startswith("  next: huge: ")
    assert all(cell_len(line) <= 80 for line in lines)
    rows = [line for line in lines if line.endswith(("A100-SXM4-40GB", "HBM3")) or "…" in line]
    assert len(rows) == 4
    assert sum("██░░░░░░░░ 2/8" in row for row in rows) == 1  # 2 of 8 GPUs: two tenths filled


def every_command(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths of every command of the CLI (groups and their commands), hidden ones too."""
    found = [path]
    for name, command in getattr(group, "commands", {}).items():
        found += every_command(command, (*path, name))
    return found


def test_every_help_screen_speaks_plainly() -> None:
    """No Python annotations (`<str>`, `<list[str]>`, `{image}`) in any help screen."""
    root = typer.main.get_command(app)
    paths = every_command(root)
    assert len(paths) > 60
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, (path, result.output)
        for placeholder in ("<str>", "<int>", "<float>", "<bool>", "<list", "{"):
            assert placeholder not in result.output, (path, placeholder, result.output)


def test_queue_shows_when_waiting_work_should_start(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    # Every GPU of the demo cluster taken by work that declared two hours.
    for server in range(4):
        code, out = invoke(
            runner, "run", "busybox", "--name", f"fill-{server}", "--gpu", "8",
            "--duration", "7200", "--not-preemptible", "--wait", "--timeout", "30",
        )  # fmt: skip
        assert code == 0, out
    invoke_stdout(runner, "run", "busybox", "--name", "next", "--gpu", "8")

    table = invoke_stdout(runner, "queue")
    entries = json.loads(invoke_stdout(runner, "queue", "-o", "json"))

    assert "START" in table.splitlines()[0]
    row = next(line for line in table.splitlines() if "next" in line)
    assert "in 1h" in row or "in 2h" in row, table
    assert entries[0]["estimated_start"] is not None


def test_run_with_a_quarter_gpu_and_gpu_memory(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    out = invoke_stdout(
        runner,
        "run",
        "busybox",
        "--name",
        "vram",
        "--gpu",
        "0.25",
        "--gpu-memory",
        "8",
        "-o",
        "json",
    )
    workload = json.loads(out)
    assert (workload["gpu"], workload["gpu_memory_gb"]) == (0.25, 8)
    described = invoke_stdout(runner, "describe", workload["id"])
    assert "gpu 0.25, 8 GB GPU memory" in described


def test_teams_place_and_fairshare(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    invoke_stdout(runner, "teams", "create", "research")
    invoke_stdout(runner, "teams", "create", "vision")
    placed = invoke_stdout(runner, "teams", "place", "research", "--gpu", "16", "--weight", "2")
    assert placed.strip() == "research: parent -, guarantee 16 gpu, weight 2"
    placed = invoke_stdout(
        runner,
        "teams",
        "place",
        "vision",
        "--parent",
        "research",
        "--gpu",
        "4",
        "--gpu-model",
        "H100=3",
        "--gpu-model-limit",
        "H100=6",
        "--gpu-model-limit",
        "L4=0",
    )
    assert placed.startswith("vision: parent ")
    assert "guarantee 4 gpu (3 H100)" in placed
    assert placed.rstrip().endswith("at most 6 H100, 0 L4")
    code, out = invoke(
        runner, "teams", "place", "vision", "--gpu", "4", "--gpu-model", "H100=3",
        "--gpu-model-limit", "H100=2",
    )  # fmt: skip
    assert code == 1
    assert "--gpu-model-limit" in out
    assert "at least the guarantee" in out
    code, out = invoke(runner, "teams", "place", "vision", "--gpu-model-limit", "H100")
    assert code == 2
    assert "MODEL=GPUS" in out
    invoke_stdout(
        runner, "teams", "place", "vision", "--parent", "research", "--gpu", "4",
        "--gpu-model", "H100=3", "--gpu-model-limit", "H100=6",
    )  # fmt: skip
    code, out = invoke(runner, "teams", "place", "vision", "--gpu", "4", "--gpu-model", "H100=5")
    assert code == 1
    assert "--gpu-model" in out
    assert "part of it" in out
    code, out = invoke(runner, "teams", "place", "vision", "--gpu-model", "H100")
    assert code == 2
    assert "MODEL=GPUS" in out
    code, out = invoke(runner, "teams", "place", "research", "--parent", "vision")
    assert code == 1
    assert "--parent" in out
    assert "own ancestor" in out
    code, out = invoke(runner, "teams", "place", "vision", "--weight", "0")
    assert code == 1
    assert "--weight" in out
    rows = json.loads(invoke_stdout(runner, "teams", "fairshare", "-o", "json"))
    assert [(r["name"], r["guarantee"]["gpu"], r["weight"]) for r in rows] == [
        ("research", 16, 2),
        ("vision", 4, 1),
    ]
    assert rows[1]["gpu_models"] == [
        {"model": "H100", "guarantee": 3, "limit": 6, "used": 0, "weight": None, "fair_share": None}
    ]
    table = invoke_stdout(runner, "teams", "fairshare")
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["TEAM", "WEIGHT", "GUARANTEE"]
    assert lines[1].startswith("research ")
    assert lines[2].startswith("  vision ")
    assert all(len(line) <= 80 for line in lines)
    # Time-based fair share (off here): Slurm's factor is 1; the decayed usage is in the
    # wide view.
    header = lines[0].split()
    assert "FACTOR" in header
    assert lines[1].split()[header.index("FACTOR") - len(header)] == "1.000"
    wide = invoke_stdout(runner, "teams", "fairshare", "-o", "wide")
    assert "DECAYED USAGE" in wide.splitlines()[0]
    assert "GPU MODELS" in wide.splitlines()[0]
    assert "H100 0 used, 3 guaranteed, at most 6" in wide
    assert rows[0]["decayed_usage"]["gpu"] == 0


def test_teams_place_with_weights_apart(cli: tuple[CliRunner, str]) -> None:
    runner, _ = cli
    invoke_stdout(runner, "teams", "create", "vision")
    placed = invoke_stdout(
        runner, "teams", "place", "vision", "--weight", "2", "--resource-weight", "gpu=5",
        "--resource-weight", "ram=1", "--gpu-model-weight", "H100=4",
    )  # fmt: skip
    assert placed.strip() == ("vision: parent -, guarantee 0, weight 2 (gpu 5, ram_gb 1, H100 4)")
    rows = json.loads(invoke_stdout(runner, "teams", "fairshare", "-o", "json"))
    assert rows[0]["weights"] == {"cpu": 2, "ram_gb": 1, "storage_gb": 2, "gpu": 5}
    assert rows[0]["gpu_models"][0]["weight"] == 4
    table = invoke_stdout(runner, "teams", "fairshare").splitlines()
    assert table[1].split()[:5] == ["vision", "2", "(ram_gb", "1,", "gpu"]
    wide = invoke_stdout(runner, "teams", "fairshare", "-o", "wide")
    assert "H100 0 used, weight 4, fair share 0" in wide
    # A resource the API does not know names the flag and the key; a malformed value
    # is refused before any request.
    code, out = invoke(runner, "teams", "place", "vision", "--resource-weight", "gpus=2")
    assert code == 1
    assert "--resource-weight" in out
    assert "gpus" in out
    code, out = invoke(runner, "teams", "place", "vision", "--gpu-model-weight", "H100=1.5")
    assert code == 2
    assert "NAME=WEIGHT" in out
    code, out = invoke(runner, "teams", "place", "vision", "--gpu-model-weight", "H100=0")
    assert code == 1
    assert "--gpu-model-weight" in out
