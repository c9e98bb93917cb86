"""`gpuyard cp`, `files` and `resize` through a real served app and a real agent on the
session's dockerd (SQLite): files go up and come back byte for byte, folders whole; a
resize is applied and shown."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import admin_caller, make_context, make_settings, mint_token, settle
from factories.docker_fleet import docker_fleet
from factories.live import served
from support.dockerd import DockerServer
from typer.testing import CliRunner

from gpuyard.api.app import create_app
from gpuyard.cli.main import app
from gpuyard.log import configure_logging
from gpuyard.services.containers.starter import start_scheduled
from gpuyard.services.context import ServiceContext


@pytest.fixture
def ctx(tmp_path: Path, restore_logging: None) -> Iterator[ServiceContext]:
    configure_logging("WARNING")  # the app logs on stderr, not into the CLI's stdout
    context = make_context(
        make_settings(tmp_path / "data", None, demo=False, stop_grace_period_s=0.0)
    )
    yield context
    context.db.dispose()


@contextlib.contextmanager
def ticking(ctx: ServiceContext) -> Iterator[None]:
    """Scheduling cycles and starter ticks in a thread, every 0.1 s, while the block runs."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.1):
            settle(ctx)
            start_scheduled(ctx)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def cli(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cp_up_and_back_files_listing_and_resize(
    ctx: ServiceContext,
    dockerd: DockerServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GPUYARD_TOKEN", mint_token(ctx, admin_caller(ctx).user_id))
    runner = CliRunner()
    local = tmp_path / "local"
    (local / "project" / "src").mkdir(parents=True)
    (local / "project" / "README").write_bytes(b"read me\n")
    (local / "project" / "src" / "main.py").write_bytes(b"print('hi')\n\x00\xff")
    (local / "one.bin").write_bytes(bytes(range(256)) * 10)
    with docker_fleet(ctx, dockerd, tmp_path, ["host-a"]), served(create_app(ctx)) as url:
        monkeypatch.setenv("GPUYARD_URL", url)
        out = cli(
            runner, "run", dockerd.image, "--name", "box", "--cpu", "0.1", "--ram", "0.0625",
            "-o", "json", "--", "sleep", "3600",
        )  # fmt: skip
        workload_id = json.loads(out)["id"]
        settle(ctx)
        start_scheduled(ctx)
        assert json.loads(cli(runner, "describe", "box", "-o", "json"))["status"] == "running"

        assert cli(runner, "cp", str(local / "one.bin"), "box:").strip() == "copied 1 file"
        assert cli(runner, "cp", str(local / "project"), "box:").strip() == "copied 2 files"
        listed = json.loads(cli(runner, "files", "box", "-o", "json"))
        assert sorted((f["path"], f["type"]) for f in listed) == [
            ("one.bin", "file"),
            ("project", "dir"),
        ]
        inner = json.loads(cli(runner, "files", f"{workload_id[:8]}:project/src", "-o", "json"))
        assert [(f["path"], f["size"]) for f in inner] == [("project/src/main.py", 14)]

        back = tmp_path / "back"
        back.mkdir()
        cli(runner, "cp", "box:one.bin", str(back))
        assert (back / "one.bin").read_bytes() == (local / "one.bin").read_bytes()
        assert cli(runner, "cp", "box:project", str(back)).strip() == "copied 2 files"
        assert (back / "project" / "README").read_bytes() == b"read me\n"
        assert (back / "project" / "src" / "main.py").read_bytes() == b"print('hi')\n\x00\xff"

        refused = runner.invoke(app, ["cp", str(local / "one.bin"), str(back)])
        assert refused.exit_code == 2
        assert "one side must be WORKLOAD:PATH" in refused.output
        missing = runner.invoke(app, ["cp", "box:nothing-here", str(back)])
        assert missing.exit_code == 1

        # exec without a terminal: stdout and stderr as they come, the command's exit code
        ran = runner.invoke(
            app, ["exec", "box", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]
        )
        assert ran.exit_code == 3, ran.output
        assert sorted(ran.stdout.splitlines()) == ["err", "out"]  # two streams: either order
        fed = runner.invoke(app, ["exec", "-i", "box", "--", "cat"], input="through stdin\n")
        assert fed.exit_code == 0, fed.output
        assert fed.stdout == "through stdin\n"
        seen = runner.invoke(app, ["exec", "box", "--", "cat", "/workspace/project/README"])
        assert seen.stdout == "read me\n"  # the files cp put there, seen from inside
        no_terminal = runner.invoke(app, ["exec", "-t", "box"])
        assert no_terminal.exit_code == 2
        assert "stdin is not a terminal" in no_terminal.output

        # run --follow prints the job's output as it writes it and ends with it; logs -f of
        # a finished job prints what it wrote and returns
        script = "for i in 1 2 3; do echo line $i; sleep 0.2; done"
        with ticking(ctx):  # the scheduler and starter, as `gpuyard serve`'s loops would
            followed = runner.invoke(
                app,
                ["run", dockerd.image, "--name", "job", "--cpu", "0.1", "--ram", "0.0625",
                 "--follow", "--timeout", "60", "--", "sh", "-c", script],
            )  # fmt: skip
        assert followed.exit_code == 0, followed.output
        assert "line 1\nline 2\nline 3\n" in followed.stdout
        again = runner.invoke(app, ["logs", "-f", "job"])
        assert again.exit_code == 0, again.output
        assert again.stdout == "line 1\nline 2\nline 3\n"

        resized = json.loads(cli(runner, "resize", "box", "--cpu", "0.2", "-o", "json"))
        assert resized["cpu"] == 0.2
        refused = runner.invoke(app, ["resize", "box"])
        assert refused.exit_code == 2
        assert "give at least one of" in refused.output
