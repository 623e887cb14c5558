"""The two jdcloud-sdk generations the dialect must serve, unmodified.

* jdcloud-sdk 1.6.354 (``JDCLOUD3-HMAC-SHA256``), pinned in pyproject's dev extra, imported here.
* jdcloud-sdk 1.6.50 (``JDCLOUD2-HMAC-SHA256``), installed by ``scripts/bootstrap.sh`` into its own
  directory beside the venv (``.venv/jdcloud-1.6.50``, ``pip install --target``): both are the
  package ``jdcloud_sdk``, so the old one runs in a subprocess with that directory first on
  ``PYTHONPATH``, or is loaded in-process under another package name for its signer alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

from jdcloud_sdk.core.config import Config
from jdcloud_sdk.core.credential import Credential
from jdcloud_sdk.core.logger import ERROR, Logger
from jdcloud_sdk.services.mps.client.MpsClient import MpsClient

AK = "testAccessKeyId"
SK = "testAccessKeySecret"
REGION = "cn-north-1"
OLD_SDK = Path(sys.prefix) / "jdcloud-1.6.50"
OLD_VERSION = "1.3.3"  # jdcloud_sdk.core.version.VERSION of the 1.6.50 release


def client(url: str, secret: str = SK, key_id: str = AK) -> MpsClient:
    """The current SDK pointed at ``http://127.0.0.1:PORT`` (``url`` as ``serve_wsgi`` gives it)."""
    endpoint = url.removeprefix("http://")
    return MpsClient(Credential(key_id, secret), Config(endpoint=endpoint, scheme="http", timeout=10), Logger(ERROR))


def old_sdk_dir() -> Path:
    assert (OLD_SDK / "jdcloud_sdk").is_dir(), f"jdcloud-sdk 1.6.50 is not in {OLD_SDK}: run scripts/bootstrap.sh"
    return OLD_SDK


def load_old_package(alias: str = "jdcloud_sdk_1_6_50") -> ModuleType:
    """jdcloud-sdk 1.6.50 under another top-level name (its modules import each other relatively)."""
    if alias in sys.modules:
        return sys.modules[alias]
    root = old_sdk_dir() / "jdcloud_sdk"
    spec = importlib.util.spec_from_file_location(alias, root / "__init__.py", submodule_search_locations=[str(root)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


def old_module(name: str) -> Any:
    load_old_package()
    return importlib.import_module(f"jdcloud_sdk_1_6_50.{name}")


def run_old_sdk(url: str, body: str, timeout: float = 60) -> Any:
    """Run ``body`` with jdcloud-sdk 1.6.50 in a subprocess; ``client`` is an MpsClient pointed at
    ``url``; whatever the script assigns to ``out`` comes back (JSON)."""
    script = "\n".join(
        [
            "import json",
            "from jdcloud_sdk.core.version import VERSION",
            "from jdcloud_sdk.core.config import Config",
            "from jdcloud_sdk.core.credential import Credential",
            "from jdcloud_sdk.core.logger import Logger, ERROR",
            "from jdcloud_sdk.services.mps.client.MpsClient import MpsClient",
            f"client = MpsClient(Credential({AK!r}, {SK!r}), "
            f"Config(endpoint={url.removeprefix('http://')!r}, scheme='http', timeout=10), Logger(ERROR))",
            "out = None",
            textwrap.dedent(body),
            "print('RESULT=' + json.dumps({'version': VERSION, 'out': out}))",
        ]
    )
    env = {**os.environ, "PYTHONPATH": str(old_sdk_dir())}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT="))
    data = json.loads(line.removeprefix("RESULT="))
    assert data["version"] == OLD_VERSION, data  # it really was the old SDK that ran
    return data["out"]
