"""Workload priorities: 1 (lowest) to 5 (highest), default 3.

The priority policy (issue 21): administrators cap the priority each role may ask for
(settings ``max_priority_user`` / ``_operator`` / ``_admin``) and each team's work may
run at (a team's ``max_priority``), so a plain user cannot submit at the top priority and
evict everyone. Preemptibility is separate: a workload's priority decides whom it may
preempt, its ``preemptible`` flag whether it may be preempted.
"""

from __future__ import annotations

MIN_PRIORITY = 1
MAX_PRIORITY = 5
DEFAULT_PRIORITY = 3


def priority_limit(role_limit: int, team_limit: int | None) -> int:
    """The highest priority a submission may ask for: its submitter's role's cap, lowered
    by its team's where the team has one."""
    return role_limit if team_limit is None else min(role_limit, team_limit)


def priority_problem(
    asked: int, role: str, role_limit: int, team_name: str | None, team_limit: int | None
) -> str | None:
    """Why ``asked`` is above the policy (naming the limit and whose it is), or None."""
    limit = priority_limit(role_limit, team_limit)
    if asked <= limit:
        return None
    if team_limit is not None and team_limit < role_limit:
        whose = f"team {team_name!r}'s work"
    else:
        whose = f"the {role} role"
    return f"{asked} is above the highest priority {whose} may use ({limit}); ask 1-{limit}"
