"""Which object keys a job can write, known before it runs.

Workers name sprite sheets and the storyboard with ``sheet_key`` and ``storyboard_keys``; the
service uses ``families`` to check, at submission, that the tenant may write every key a job can
produce (each family's ``head``: the literal text all its keys start with) and that none of them
can be the job's own input (each family's ``pattern``: a regex every key it renders matches).
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as _field
from typing import TYPE_CHECKING

from app.core import templates

if TYPE_CHECKING:  # specs validates keys with the naming functions here
    from app.core.specs import SnapshotSpec

SHEET_SUFFIX_DIGITS = 5  # ``-00002`` before the extension when a template without {sheet} makes several sheets


def sheet_key(template: str, job_id: str, number: int, sheets: int) -> str:
    """``{sheet}`` -> the sheet number. Without the token a single sheet uses the template as is
    and several sheets get ``-NNNNN`` before the extension (never overwrite)."""
    if templates.uses(template, templates.SHEET):
        return templates.render(template, job_id=job_id, sheet=number)
    key = templates.render(template, job_id=job_id)
    if sheets == 1:
        return key
    root, ext = posixpath.splitext(key)
    return f"{root}-{number:0{SHEET_SUFFIX_DIGITS}d}{ext}"


def storyboard_keys(template: str, job_id: str) -> tuple[str, str]:
    """(vtt key, json key): the sheet template without its number, beside the sheets."""
    key = templates.render(template, job_id=job_id)  # the sheet number renders as ""
    folder, base = posixpath.split(key)
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = stem.rstrip("-_.") or "storyboard"
    root = posixpath.join(folder, stem)
    return f"{root}.vtt", f"{root}.json"


@dataclass(frozen=True)
class KeyFamily:
    """Keys of one kind a job writes into ``bucket``: every one starts with ``head`` and
    full-matches ``pattern``. ``field`` is the neutral path of the request field that names them."""

    field: str
    bucket: str
    head: str
    build: Callable[[], re.Pattern[str]] = _field(repr=False, compare=False)

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """Compiled on first use: submission needs it only when the input could be one of these
        keys (same bucket, key starting with ``head``), and compiling a regex per job cost more
        than all the rest of the grant check."""
        return self.build()


def families(spec: SnapshotSpec, job_id: str) -> list[KeyFamily]:
    """Images (``output``), then, with sprites, the sheets and the storyboard (``sprite.output``),
    then the tar archive (``archive.output``)."""
    out = spec.output
    found = [
        KeyFamily(
            "output",
            out.bucket,
            templates.literal_head(out.key_template, job_id=job_id),
            lambda: templates.matcher(out.key_template, job_id=job_id, given=templates.IMAGE_TOKENS),
        )
    ]
    if spec.sprite is not None:
        target = spec.sprite.target
        template = target.key_template
        if templates.uses(template, templates.SHEET):
            head = templates.literal_head(template, job_id=job_id)
            pattern = functools.partial(templates.matcher, template, job_id=job_id, given=(templates.SHEET,))
        else:
            single = templates.render(template, job_id=job_id)
            root, ext = posixpath.splitext(single)
            head = root
            digits = rf"-\d{{{SHEET_SUFFIX_DIGITS},}}"
            pattern = functools.partial(
                re.compile, f"{re.escape(single)}|{re.escape(root)}{digits}{re.escape(ext)}", re.DOTALL
            )
        found.append(KeyFamily("sprite.output", target.bucket, head, pattern))
        for key in storyboard_keys(template, job_id):
            found.append(KeyFamily("sprite.output", target.bucket, key, functools.partial(_literal, key)))
    if spec.archive is not None:
        key = templates.render(spec.archive.target.key_template, job_id=job_id)
        found.append(KeyFamily("archive.output", spec.archive.target.bucket, key, functools.partial(_literal, key)))
    return found


def _literal(key: str) -> re.Pattern[str]:
    return re.compile(re.escape(key), re.DOTALL)
