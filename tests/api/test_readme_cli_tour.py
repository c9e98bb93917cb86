"""The README's CLI tour ("With the CLI", then "Teams, invites and the audit log"), run in
order, command by command, as a newcomer types it, against a served app with its loops and
the demo cluster (as `make run` starts it). The commands are read from README.md itself,
so the README cannot drift from what works; only what a person would type differently is
filled in (the invite code the tour's invite printed, the passwords prompted for)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import ADMIN_PASSWORD, make_context, make_settings
from factories.live import served
from typer.testing import CliRunner

from gpuyard.api.app import create_app
from gpuyard.cli.main import app
from gpuyard.log import configure_logging
from gpuyard.services.context import ServiceContext

README = Path(__file__).resolve().parents[2] / "README.md"
TOUR_SECTIONS = ("### With the CLI", "### Teams, invites and the audit log")
DEV_PASSWORD = "dev-pass-123456"


def tour_commands() -> list[list[str]]:
    """Every `gpuyard ...` line of the tour's sh blocks, comments dropped, in order."""
    text = README.read_text(encoding="utf-8")
    commands: list[list[str]] = []
    for heading in TOUR_SECTIONS:
        section = text[text.index(heading) :]
        block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
        assert block, f"no sh block under {heading}"
        for line in block.group(1).splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "gpuyard":
                commands.append(words[1:])
    return commands


@pytest.fixture
def tour_app(tmp_path: Path, restore_logging: None) -> Iterator[ServiceContext]:
    configure_logging("WARNING")  # the app logs on stderr, not into the CLI's stdout
    context = make_context(make_settings(tmp_path / "data", None, run_loops=True))
    yield context
    context.db.dispose()


def test_the_readme_cli_tour_works_top_to_bottom(
    tour_app: ServiceContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = tour_commands()
    assert len(commands) >= 20  # the tour is read, not an empty list
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("GPUYARD_TOKEN", raising=False)
    runner = CliRunner()
    invite_code = ""
    with served(create_app(tour_app)) as url:
        monkeypatch.setenv("GPUYARD_URL", url)  # the tour's server, on a free port
        for args in commands:
            typed = [invite_code if word == "gpyinv_..." else word for word in args]
            if typed[:1] == ["audit"] and "--data-dir" in typed:
                typed[typed.index("--data-dir") + 1] = str(tour_app.settings.data_dir)
            if typed[:2] == ["login", "admin@example.com"]:
                typed[typed.index("--password") + 1] = ADMIN_PASSWORD
            if typed[:2] == ["context", "use"]:
                typed[2] = url.removeprefix("http://")  # the context named after host:port
            answers = None
            if typed[0] == "register":
                answers = f"{DEV_PASSWORD}\n{DEV_PASSWORD}\n"
            elif typed[:2] == ["login", "dev@example.com"]:
                answers = f"{DEV_PASSWORD}\n"
            result = runner.invoke(app, typed, input=answers)
            assert result.exit_code == 0, f"gpuyard {' '.join(args)}:\n{result.output}"
            if typed[0] == "invite":
                invite_code = re.search(r"gpyinv_\S+", result.output).group(0)  # type: ignore[union-attr]
            if typed[0] == "whoami" and "dev@example.com" in result.output:
                assert "teams: ml" in result.output
                assert re.search(r"^priority: up to [1-5]$", result.output, re.MULTILINE)
    assert invite_code
