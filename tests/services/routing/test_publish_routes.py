"""The routing loop's tick when nginx refuses the candidate, and when routing is off."""

from __future__ import annotations

from pathlib import Path

from factories.app import make_context, make_settings

from gpuyard.services.background import build_loops
from gpuyard.services.routing.loop import publish_routes


def test_a_refused_candidate_leaves_the_live_config_and_no_candidate(tmp_path: Path) -> None:
    live = tmp_path / "routes.conf"
    live.write_text("# the config nginx runs now\n")
    ctx = make_context(
        make_settings(
            tmp_path / "data",
            None,
            routing_nginx_conf=live,
            routing_nginx_binary="false",  # an "nginx -t" that refuses everything
            routing_nginx_pid_file=tmp_path / "no.pid",
        )
    )
    try:
        assert publish_routes(ctx) is False
        assert live.read_text() == "# the config nginx runs now\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "routes.conf"]
        assert "routing" in [loop.name for loop in build_loops(ctx)]
    finally:
        ctx.db.dispose()


def test_routing_is_off_by_default(tmp_path: Path) -> None:
    ctx = make_context(make_settings(tmp_path / "data", None))
    try:
        assert ctx.settings.routing_nginx_conf is None
        assert "routing" not in [loop.name for loop in build_loops(ctx)]
        assert publish_routes(ctx) is False
    finally:
        ctx.db.dispose()
