"""The image catalog and the container registries (migration 0012).

Default resources are integer columns in the workloads table's units, with CHECKs; a
registry's password is stored encrypted (``auth/encryption.SecretBox``), never in clear.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gpuyard.store.base import Base, new_id, utcnow


class ImageRow(Base):
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    reference: Mapped[str] = mapped_column(String(512))
    #: What pools key on (nginx, python, ubuntu-ssh...).
    type: Mapped[str] = mapped_column(String(32), index=True)
    default_port: Mapped[int | None]
    cpu_milli: Mapped[int] = mapped_column(default=0)
    ram_mib: Mapped[int] = mapped_column(default=0)
    storage_mib: Mapped[int] = mapped_column(default=0)
    gpu_milli: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    #: Where a workload's files directory is mounted in a container of this image.
    files_path: Mapped[str | None] = mapped_column(String(1024))
    #: The user who created it (no foreign key: the entry outlives its author's account).
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "cpu_milli >= 0 AND ram_mib >= 0 AND storage_mib >= 0 AND gpu_milli >= 0",
            name="resources_non_negative",
        ),
        CheckConstraint(
            "default_port IS NULL OR default_port BETWEEN 1 AND 65535", name="default_port"
        ),
    )


class RegistryRow(Base):
    __tablename__ = "registries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: ``host[:port]``, the first component of the references stored there.
    address: Mapped[str] = mapped_column(String(300), unique=True)
    username: Mapped[str | None] = mapped_column(String(256))
    password_enc: Mapped[str | None] = mapped_column(Text)
    insecure: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
