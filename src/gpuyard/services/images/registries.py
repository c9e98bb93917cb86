"""Container registries: where images are pushed and pulled from, with credentials that
are encrypted at rest and decrypted only for the one call that needs them."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, FieldError, InvalidInput, NotFound
from gpuyard.domain.image_records import Registry, RegistryCredentials
from gpuyard.domain.image_references import parse_registry_address
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store.image_tables import RegistryRow
from gpuyard.store.images import (
    add_registry,
    find_registries,
    registry_by_address,
    registry_record,
    registry_row,
    registry_taken,
)


def create_registry(
    ctx: ServiceContext,
    caller: Caller,
    name: str,
    url: str,
    username: str | None,
    password: str | None,
    insecure: bool | None,
) -> Registry:
    """Add a registry. ``url``: host[:port] or http(s)://host[:port]; http:// makes it
    insecure unless ``insecure`` says otherwise. The password is stored encrypted and
    never returned."""
    address, plain_http = parse_registry_address(url)
    if password is not None and username is None:
        raise InvalidInput.for_field("username", "required with a password")
    now = ctx.now()
    with ctx.db.write() as session:
        _refuse_taken(session, name, address)
        encrypted = ctx.secret_box.encrypt(password) if password else None
        try:
            with session.begin_nested():
                registry = add_registry(
                    session,
                    name,
                    address,
                    username,
                    encrypted,
                    plain_http if insecure is None else insecure,
                    now,
                )
        except IntegrityError:
            # Added concurrently: the savepoint is gone, so the committed row names the field.
            _refuse_taken(session, name, address)
            raise
        details = {"name": name, "address": address, "has_password": encrypted is not None}
        record_audit(
            session, AuditActor.of(caller), "registry.create", "registry", registry.id, now, details
        )
    return registry


def _refuse_taken(session: Session, name: str, address: str) -> None:
    taken = registry_taken(session, name, address)
    if taken is not None:
        what = f"name {name!r}" if taken == "name" else f"address {address!r}"
        raise Conflict(f"a registry with the {what} already exists", [FieldError(taken, "taken")])


def list_registries(ctx: ServiceContext, limit: int, offset: int) -> tuple[list[Registry], int]:
    """Registries by name, with the total count."""
    with ctx.db.read() as session:
        return find_registries(session, limit, offset)


def get_registry(ctx: ServiceContext, registry_id: str) -> Registry:
    """One registry (NotFound when there is none)."""
    with ctx.db.read() as session:
        return registry_record(_existing(session, registry_id))


def delete_registry(ctx: ServiceContext, caller: Caller, registry_id: str) -> None:
    """Forget a registry and its credentials (what was pushed there stays there)."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = _existing(session, registry_id)
        details = {"name": row.name, "address": row.address}
        session.delete(row)
        session.flush()
        record_audit(
            session, AuditActor.of(caller), "registry.delete", "registry", registry_id, now, details
        )


def registry_credentials(
    ctx: ServiceContext, registry_id: str | None, address: str | None
) -> tuple[Registry, RegistryCredentials] | None:
    """The registry ``registry_id`` names (422 on ``registry_id`` when none), else the one at
    ``address`` if any, with its credentials decrypted for one call. The read is a short
    transaction of its own: the caller talks to the registry after it."""
    with ctx.db.read() as session:
        if registry_id is not None:
            row = registry_row(session, registry_id)
            if row is None:
                raise InvalidInput.for_field(
                    "registry_id", f"registry {registry_id!r} does not exist"
                )
        elif address is not None:
            row = registry_by_address(session, address)
            if row is None:
                return None
        else:
            return None
        registry = registry_record(row)
        username, encrypted = row.username, row.password_enc
    password = ctx.secret_box.decrypt(encrypted) if encrypted else None
    return registry, RegistryCredentials(registry.address, username, password)


def _existing(session: Session, registry_id: str) -> RegistryRow:
    row = registry_row(session, registry_id)
    if row is None:
        raise NotFound.for_object("registry", registry_id)
    return row
