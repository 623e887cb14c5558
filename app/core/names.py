"""Object names: S3's rules, checked by the core so that every backend agrees on them.

A name the local backend (a directory tree) and an S3 server would treat differently, or that
one of them refuses only when a worker writes it, is refused at submission instead:

* bucket: 3-63 characters of lowercase letters, digits, ``.`` and ``-``, starting and ending with
  a letter or digit, no ``..``, not shaped like an IPv4 address (S3's bucket naming rules);
* key: 1-1024 bytes of UTF-8 (S3's limit), ``/``-separated segments of at most 255 bytes each
  (what file systems allow a name; the local backend stores one file per key), no empty, ``.``
  or ``..`` segment (``a//b``, ``/a`` and ``a/./b`` name one file locally but three objects on
  S3), no control characters (U+0000-U+001F, U+007F-U+009F) and no backslash (a path separator
  on some systems, and never what a client meant in an object key).
"""

from __future__ import annotations

import re

from app.core.errors import InvalidParameter

MIN_BUCKET = 3
MAX_BUCKET = 63
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def bucket_problem(name: str) -> str | None:
    """Why ``name`` is not a bucket name every backend accepts, or None."""
    if not isinstance(name, str) or not name:
        return "is required"
    if not MIN_BUCKET <= len(name) <= MAX_BUCKET:
        return f"must be {MIN_BUCKET}-{MAX_BUCKET} characters, got {len(name)}"
    if not _BUCKET.fullmatch(name):
        return "must be lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
    if ".." in name:
        return "must not contain '..'"
    if _IPV4.fullmatch(name):
        return "must not be formatted as an IP address"
    return None


def key_problem(key: str) -> str | None:
    """Why ``key`` is not an object key every backend stores the same way, or None."""
    if not isinstance(key, str) or not key:
        return "is required"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode text (it holds a lone surrogate)"
    if size > MAX_KEY_BYTES:
        return f"is {size} bytes; at most {MAX_KEY_BYTES} are allowed"
    if _CONTROL.search(key):
        return "must not contain control characters"
    if "\\" in key:
        return "must not contain a backslash"
    for segment in key.split("/"):
        if segment == "":
            return "must not start or end with '/' or contain '//'"
        if segment in (".", ".."):
            return "must not contain '.' or '..' path segments"
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            return f"has a path segment over {MAX_SEGMENT_BYTES} bytes"
    return None


def check_bucket(name: str, field: str) -> None:
    problem = bucket_problem(name)
    if problem:
        raise InvalidParameter(field, problem)


def check_key(key: str, field: str) -> None:
    problem = key_problem(key)
    if problem:
        raise InvalidParameter(field, problem)
