"""Typed errors of gpuyard's core.

Each class knows its problem ``type``, its HTTP status and the fields at fault, so one
handler in the API renders every one of them as RFC 9457 problem+json. Services raise
these, never HTTP exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One offending input field: a dotted path (``cpu``, ``gpus.0.model``) and why."""

    field: str
    message: str


class GpuyardError(Exception):
    """Base of every error gpuyard reports to a caller."""

    type: str = "about:blank"
    title: str = "Error"
    status: int = 500

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: list[FieldError] = list(errors or [])


class InvalidInput(GpuyardError):
    """The request is well formed but a value is out of range or inconsistent."""

    type = "https://gpuyard.dev/problems/invalid-input"
    title = "Invalid input"
    status = 422

    @classmethod
    def for_field(cls, field: str, message: str) -> InvalidInput:
        return cls.for_fields([FieldError(field, message)])

    @classmethod
    def for_fields(cls, errors: list[FieldError]) -> InvalidInput:
        """One answer naming every field that is wrong."""
        return cls("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


class NotFound(GpuyardError):
    """The object does not exist, or the caller may not know that it does."""

    type = "https://gpuyard.dev/problems/not-found"
    title = "Not found"
    status = 404

    @classmethod
    def for_object(cls, kind: str, object_id: str, field: str | None = None) -> NotFound:
        detail = f"{kind} {object_id!r} not found"
        return cls(detail, [FieldError(field, detail)] if field else None)


class Conflict(GpuyardError):
    """The request clashes with the current state (a duplicate name, a busy object)."""

    type = "https://gpuyard.dev/problems/conflict"
    title = "Conflict"
    status = 409


class InvalidTransition(Conflict):
    """A status change the state machine does not allow."""

    type = "https://gpuyard.dev/problems/invalid-transition"
    title = "Invalid status transition"


class Unauthenticated(GpuyardError):
    """No credentials, or credentials that are not valid."""

    type = "https://gpuyard.dev/problems/unauthenticated"
    title = "Authentication required"
    status = 401


class Forbidden(GpuyardError):
    """Authenticated, but the policy does not allow this action."""

    type = "https://gpuyard.dev/problems/forbidden"
    title = "Forbidden"
    status = 403


class RateLimited(GpuyardError):
    """Too many attempts; ``retry_after`` seconds until the next is allowed."""

    type = "https://gpuyard.dev/problems/rate-limited"
    title = "Too many requests"
    status = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class UpstreamProblem(GpuyardError):
    """A runtime (an agent) refused a request made on the caller's behalf: its status and
    message are relayed (a path refused, a file too large, a container gone)."""

    type = "https://gpuyard.dev/problems/runtime"
    title = "Runtime refused the request"

    def __init__(self, status: int, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail, errors)
        # Relay the agent's client errors as they are; anything else is a bad gateway.
        self.status = status if 400 <= status < 500 and status != 401 else 502


class PayloadTooLarge(GpuyardError):
    """The request body is larger than the limit it names."""

    type = "https://gpuyard.dev/problems/payload-too-large"
    title = "Payload too large"
    status = 413


class RequestTimeout(GpuyardError):
    """The request body stopped arriving before it was complete."""

    type = "https://gpuyard.dev/problems/request-timeout"
    title = "Request timeout"
    status = 408
