"""A lookup that read the database just before a logout or a deactivation committed must
not put its (now stale) caller into the cache after the change cleared it: changes made
through this process apply to the next request (auth/caller_cache.py).

The interleaving is forced deterministically: the wrapped _resolve_session lets the other
request's change run between resolve_caller's database read and its ctx.callers.put."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories.app import admin_caller, make_context, make_settings

from gpuyard.auth.caller import Caller
from gpuyard.auth.roles import Role
from gpuyard.auth.tokens import issue_access_token
from gpuyard.domain.errors import Unauthenticated
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity import auth
from gpuyard.services.identity.users import UserChanges, create_user, update_user


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    # A long TTL: the bug does not depend on it, and a slow machine must not hide it.
    context = make_context(make_settings(tmp_path / "data", None, caller_cache_s=60))
    yield context
    context.db.dispose()


def test_a_logout_racing_a_lookup_still_applies_at_once(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = admin_caller(ctx)
    token = issue_access_token(ctx.secret_key, admin.user_id, 60, ctx.now()).token
    original = auth._resolve_session

    def read_then_other_request_logs_out(c: ServiceContext, t: str, now: object) -> Caller:
        caller = original(c, t, now)  # type: ignore[arg-type]
        auth.logout(c, caller)  # another request: commits the revocation, clears the cache
        return caller

    monkeypatch.setattr(auth, "_resolve_session", read_then_other_request_logs_out)
    auth.resolve_caller(ctx, token, None)  # the racing request (its answer was fine)
    monkeypatch.undo()
    with pytest.raises(Unauthenticated):
        auth.resolve_caller(ctx, token, None)  # logged out: must be refused


def test_a_deactivation_racing_a_lookup_still_applies_at_once(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = admin_caller(ctx)
    member = create_user(ctx, admin, "m@example.com", "a-long-password-1", Role.USER, None)
    token = issue_access_token(ctx.secret_key, member.id, 60, ctx.now()).token
    original = auth._resolve_session

    def read_then_admin_disables(c: ServiceContext, t: str, now: object) -> Caller:
        caller = original(c, t, now)  # type: ignore[arg-type]
        update_user(c, admin, member.id, UserChanges(is_active=False))
        return caller

    monkeypatch.setattr(auth, "_resolve_session", read_then_admin_disables)
    auth.resolve_caller(ctx, token, None)
    monkeypatch.undo()
    with pytest.raises(Unauthenticated):
        auth.resolve_caller(ctx, token, None)  # disabled: must be refused
