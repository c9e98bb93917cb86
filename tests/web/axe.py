"""axe-core (web/node_modules/axe-core) run in the page: no serious or critical
accessibility violation is allowed."""

from __future__ import annotations

from functools import cache
from typing import Any

from playwright.sync_api import Page

from web.build import AXE_SCRIPT

BLOCKING_IMPACTS = frozenset({"serious", "critical"})


@cache
def _axe_source() -> str:
    return AXE_SCRIPT.read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """All violations axe finds in the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, which the page's CSP does not govern
        # (an injected <script> would be refused: script-src 'self').
        page.evaluate(_axe_source())
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await window.axe.run(document, { resultTypes: ['violations'] });
            return result.violations.map((v) => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                nodes: v.nodes.slice(0, 5).map((n) =>
                    n.target.join(' ') + (n.any[0] ? ` (${n.any[0].message})` : '')),
            }));
        }"""
    )
    return violations


def assert_accessible(page: Page, where: str) -> None:
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"axe on {where}: " + "; ".join(
        f"{v['impact']} {v['id']} ({v['help']}) at {v['nodes']}" for v in blocking
    )
