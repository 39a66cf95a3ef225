"""What the staging backends share: names, sizes and the Progress a writer reports."""

import logging
from dataclasses import dataclass, field

from django.conf import settings

from apps.shares import storage as share_storage

logger = logging.getLogger("apps.uploads.staging")

STAGING_PREFIX = "uploads-staging/"
HASH_CHUNK = 1024 * 1024
MIB = 1024**2
S3_MIN_PART_SIZE = 5 * MIB
S3_MAX_PARTS = 10_000


@dataclass
class Progress:
    """What a writer made durable, for the database to record: the new offset, and on S3
    the parts uploaded since the last report and the bytes waiting in the staging object."""

    offset: int
    tail_size: int = 0
    parts: list[tuple[int, str, int]] = field(default_factory=list)  # (number, ETag, size)


def part_size_for(length: int) -> int:
    """AWS_S3_MULTIPART_SIZE, grown (by whole MiB) when the file would need more than the
    10,000 parts S3 allows."""
    configured = getattr(settings, "AWS_S3_MULTIPART_SIZE", 8 * MIB)
    needed = -(-length // S3_MAX_PARTS)
    needed = -(-needed // MIB) * MIB
    return max(configured, S3_MIN_PART_SIZE, needed)


def new_staging_name() -> str:
    return share_storage.new_name().replace(share_storage.STORAGE_PREFIX, STAGING_PREFIX, 1)
