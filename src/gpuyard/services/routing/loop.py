"""The ``routing`` loop: keeps nginx's routing config equal to the running workloads'
ports (docs/concurrency.md #33).

A tick reads the routes in one short transaction, renders the config, and with no
transaction open compares it with the live file; only a difference is tested
(``nginx -t``), swapped in and reloaded. A config nginx refuses leaves the live one in
place and is logged; the next tick tries again (a route that breaks it is a bug in the
renderer's checks, not a reason to stop routing the others).
"""

from __future__ import annotations

from gpuyard.log import get_logger
from gpuyard.services.context import ServiceContext
from gpuyard.services.routing.config import RouteLogin, RoutingConfig, render_config
from gpuyard.services.routing.nginx import NginxConfigRefused, NginxTarget, install_config
from gpuyard.services.routing.routes import current_routes

log = get_logger(__name__)
LOOP = "routing"


def nginx_target(ctx: ServiceContext) -> NginxTarget | None:
    """Where this deployment's routing config goes; None when routing is off."""
    s = ctx.settings
    if s.routing_nginx_conf is None:
        return None
    return NginxTarget(s.routing_nginx_conf, s.routing_nginx_pid_file, s.routing_nginx_binary)


def rendered_routes(ctx: ServiceContext) -> RoutingConfig:
    """The config the running workloads call for now."""
    s = ctx.settings
    login = (
        RouteLogin(s.routing_public_url, s.routing_dashboard_url)
        if s.routing_public_url and s.routing_dashboard_url
        else None
    )
    return render_config(
        current_routes(ctx),
        listen=s.routing_listen,
        authorize_base=s.routing_authorize_url,
        login=login,
    )


def publish_routes(ctx: ServiceContext) -> bool:
    """One tick: install the config when it changed. True when nginx got a new one."""
    target = nginx_target(ctx)
    if target is None:
        return False
    config = rendered_routes(ctx)
    for route, problem in config.refused:
        log.warning("route not published", route=route.key.path, why=problem)
    try:
        changed = install_config(target, config.text)
    except NginxConfigRefused as exc:
        log.error("routing config refused by nginx -t; the old one stays", error=str(exc))
        return False
    if changed:
        log.info("routing config reloaded", routes=len(config.routes))
    return changed
