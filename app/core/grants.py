"""Bucket grants: which tenant may read or write which buckets (or key prefixes in them).

Operators grant them (``openmps buckets grant TENANT BUCKET[/PREFIX] --read --write``); nothing
is readable or writable by a tenant without one. A grant's ``prefix`` is plain text the key must
start with: ``media/in/`` covers ``in/a.mp4`` but not ``inbox/a.mp4``; ``media/in`` covers both
(end a prefix with ``/`` to mean a folder). Bucket ``*`` (no prefix) is every bucket, for
single-tenant installs such as ``make up``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from app.core.errors import InvalidParameter
from app.core.names import bucket_problem

ALL_BUCKETS = "*"


class Access(StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Grant:
    bucket: str  # a bucket name, or ALL_BUCKETS
    prefix: str = ""  # keys that start with this; "" = the whole bucket
    read: bool = False
    write: bool = False

    @property
    def scope(self) -> str:
        """``bucket`` or ``bucket/prefix``, as the CLI takes and prints it."""
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def allows(self, access: Access) -> bool:
        return self.read if access is Access.READ else self.write

    def covers(self, bucket: str, key_head: str) -> bool:
        """Whether every key starting with ``key_head`` in ``bucket`` lies inside this grant."""
        return (self.bucket == ALL_BUCKETS or self.bucket == bucket) and key_head.startswith(self.prefix)


def parse_scope(text: str) -> tuple[str, str]:
    """``BUCKET[/PREFIX]`` -> (bucket, prefix); ``*`` alone is every bucket."""
    bucket, _, prefix = text.partition("/")
    if bucket == ALL_BUCKETS:
        if prefix:
            raise InvalidParameter("scope", "'*' (every bucket) takes no prefix")
        return bucket, ""
    problem = bucket_problem(bucket)
    if problem:
        raise InvalidParameter("scope", f"names bucket {bucket!r}, which {problem}")
    return bucket, prefix


def permits(grants: Iterable[Grant], access: Access, bucket: str, key_head: str) -> bool:
    """Whether some grant gives ``access`` to every key in ``bucket`` that starts with ``key_head``
    (an object key itself, or the literal head of an output template)."""
    return any(g.allows(access) and g.covers(bucket, key_head) for g in grants)
