"""openmps for its users: the Python client of the native API (``openmps.client``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("openmps")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
