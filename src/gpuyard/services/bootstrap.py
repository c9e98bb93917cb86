"""Start-up: schema, secret key, the first admin and the demo cluster."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError

from gpuyard.auth.passwords import hash_password
from gpuyard.auth.roles import Role
from gpuyard.auth.secret_key import load_or_create_secret_key
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB
from gpuyard.log import get_logger
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import SYSTEM_ACTOR, record_audit
from gpuyard.settings import Settings
from gpuyard.store import fleet, identity
from gpuyard.store.database import Database
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.migrate import upgrade_to_head

log = get_logger(__name__)

DEMO_CLUSTER = "demo"
# (name, gpu model, gpu memory GB) for the demo's simulated servers: 4 x 8 GPUs, two models.
DEMO_SERVERS = [
    ("h100-node-1", "NVIDIA H100 80GB HBM3", 80),
    ("h100-node-2", "NVIDIA H100 80GB HBM3", 80),
    ("a100-node-1", "NVIDIA A100-SXM4-40GB", 40),
    ("a100-node-2", "NVIDIA A100-SXM4-40GB", 40),
]


def build_context(settings: Settings) -> ServiceContext:
    """Open the database, apply migrations and load the secret key."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    upgrade_to_head(db)
    key = load_or_create_secret_key(settings.secret_key, settings.secret_key_path)
    return ServiceContext(settings=settings, db=db, secret_key=key)


def ensure_first_admin(ctx: ServiceContext) -> str | None:
    """Create the first admin when there are no users. Returns the password when it was
    generated (to be printed once), else None."""
    try:
        return _create_first_admin(ctx)
    except IntegrityError:
        return None  # another process starting at the same moment created it


def _create_first_admin(ctx: ServiceContext) -> str | None:
    with ctx.db.write() as session:
        if identity.count_users(session):
            return None
        password = ctx.settings.admin_password
        generated = password is None
        if password is None:
            password = secrets.token_urlsafe(12)
        admin = identity.insert_user(
            session,
            email=ctx.settings.admin_email.lower(),
            username="admin",
            password_hash=hash_password(password),
            role=Role.ADMIN.value,
            created_at=ctx.now(),
        )
        if admin is None:
            return None  # another process starting at the same moment created it
        details = {"email": admin.email, "role": admin.role, "first_admin": True}
        record_audit(session, SYSTEM_ACTOR, "user.create", "user", admin.id, ctx.now(), details)
    log.info("first_admin_created", email=ctx.settings.admin_email)
    return password if generated else None


def ensure_demo_cluster(ctx: ServiceContext) -> bool:
    """Create the simulated demo cluster once; True when it was created now."""
    try:
        return _create_demo_cluster(ctx)
    except IntegrityError:
        return False  # another process starting at the same moment created it


def _create_demo_cluster(ctx: ServiceContext) -> bool:
    with ctx.db.write() as session:
        if fleet.cluster_name_taken(session, DEMO_CLUSTER):
            return False
        now = ctx.now()
        cluster = ClusterRow(name=DEMO_CLUSTER, kind="simulated", created_at=now)
        session.add(cluster)
        session.flush()
        for name, model, memory_gb in DEMO_SERVERS:
            server = ServerRow(
                name=name,
                cluster_id=cluster.id,
                status="online",
                labels={"zone": "demo", "gpu": model.split()[1].lower()},
                cpu_milli=64_000,
                ram_mib=512 * MIB_PER_GB,
                storage_mib=2048 * MIB_PER_GB,
                gpu_milli=8 * GPU_MILLI,
                created_at=now,
                updated_at=now,
            )
            for index in range(8):
                server.gpus.append(
                    ServerGpuRow(
                        gpu_index=index,
                        uuid=f"GPU-demo-{name}-{index}",
                        model=model,
                        memory_mib=memory_gb * MIB_PER_GB,
                    )
                )
            session.add(server)
        details = {"name": DEMO_CLUSTER, "kind": "simulated", "servers": len(DEMO_SERVERS)}
        record_audit(session, SYSTEM_ACTOR, "cluster.create", "cluster", cluster.id, now, details)
    log.info("demo_cluster_created", servers=len(DEMO_SERVERS))
    return True
