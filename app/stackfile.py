"""``DATA_DIR/stack.json``: how a running ``make up`` stack tells the ``openmps`` CLI where it is.

The stack writes its API URL, Redis URL, data dir, the file of its secret key, its local access
key and its process id (mode 0600: it holds a secret) when it is up, and removes the file when it
stops. A file whose process is gone (a stack killed with SIGKILL) is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from app.settings import STACK_FILE


@dataclass(frozen=True)
class StackInfo:
    url: str
    redis_url: str
    data_dir: str
    secret_key_file: str
    access_key_id: str
    secret: str
    pid: int

    def server_env(self) -> dict[str, str]:
        """The OPENMPS_* variables an operator command needs to act on this stack's store."""
        env = {"OPENMPS_REDIS_URL": self.redis_url, "OPENMPS_DATA_DIR": self.data_dir, "OPENMPS_STORAGE": "local"}
        try:
            env["OPENMPS_SECRET_KEY"] = Path(self.secret_key_file).read_text().strip()
        except OSError:
            pass
        return env


def write(data_dir: Path, info: StackInfo) -> Path:
    path = data_dir / STACK_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(info), fh, indent=2)
    os.replace(tmp, path)
    return path


def remove(data_dir: Path, pid: int) -> None:
    """Remove the file if it is this process's (another stack may have taken the data dir)."""
    found = read(data_dir)
    if found is not None and found.pid == pid:
        (data_dir / STACK_FILE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read(data_dir: Path) -> StackInfo | None:
    """The stack running from ``data_dir``, or None (no file, unreadable, or its process is gone)."""
    try:
        raw = json.loads((data_dir / STACK_FILE).read_text())
        info = StackInfo(**{k: raw[k] for k in StackInfo.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if _alive(int(info.pid)) else None
