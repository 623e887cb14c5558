"""Finding dialects: every package under ``app.dialects`` that exposes ``DIALECT``.

Discovery by scanning keeps the seam one-way: nothing outside a dialect's package names it, so a
dialect is added or removed by adding or deleting its folder. ``OPENMPS_DIALECTS`` picks a
subset.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence

from app.gateway.dialect import Dialect

PACKAGE = "app.dialects"


def available() -> list[str]:
    """Names of the dialect packages installed, sorted (``mns``, ``native``, ...)."""
    package = importlib.import_module(PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg)


def load(names: Sequence[str] | None = None) -> list[Dialect]:
    """The dialects named (all when ``names`` is None or empty), in the order given."""
    wanted = list(names) if names else available()
    found: list[Dialect] = []
    for name in wanted:
        if name not in available():
            raise ValueError(f"OPENMPS_DIALECTS names {name!r}, which is not one of {', '.join(available())}")
        module = importlib.import_module(f"{PACKAGE}.{name}")
        dialect = getattr(module, "DIALECT", None)
        if not isinstance(dialect, Dialect):
            raise ValueError(f"{PACKAGE}.{name} does not define DIALECT")
        found.append(dialect)
    return found
