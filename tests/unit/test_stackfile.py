"""``DATA_DIR/stack.json``: how the CLI finds a running ``make up`` stack, and ignores a dead one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app import stackfile
from app.settings import STACK_FILE
from app.stackfile import StackInfo


def info(data_dir: Path, pid: int) -> StackInfo:
    (data_dir / "secret.key").write_text("sealing-key\n")
    return StackInfo(
        url="http://127.0.0.1:9",
        redis_url="redis://127.0.0.1:7/0",
        data_dir=str(data_dir),
        secret_key_file=str(data_dir / "secret.key"),
        access_key_id="LOCALDEVKEY",
        secret="s3cret",
        pid=pid,
    )


def test_a_running_stack_is_found_with_what_operator_commands_need(tmp_path: Path) -> None:
    written = stackfile.write(tmp_path, info(tmp_path, os.getpid()))
    assert written.stat().st_mode & 0o777 == 0o600
    found = stackfile.read(tmp_path)
    assert found == info(tmp_path, os.getpid())
    assert found.server_env() == {
        "OPENMPS_REDIS_URL": "redis://127.0.0.1:7/0",
        "OPENMPS_DATA_DIR": str(tmp_path),
        "OPENMPS_STORAGE": "local",
        "OPENMPS_SECRET_KEY": "sealing-key",
    }


def test_a_dead_stack_a_broken_file_and_no_file_are_no_stack(tmp_path: Path) -> None:
    assert stackfile.read(tmp_path) is None
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stackfile.write(tmp_path, info(tmp_path, int(gone.stdout)))  # a stack killed with SIGKILL left this
    assert stackfile.read(tmp_path) is None
    (tmp_path / STACK_FILE).write_text("{not json")
    assert stackfile.read(tmp_path) is None


def test_remove_takes_away_only_its_own_file(tmp_path: Path) -> None:
    stackfile.write(tmp_path, info(tmp_path, os.getpid()))
    stackfile.remove(tmp_path, os.getpid() + 1)  # another stack's stop: not its file
    assert (tmp_path / STACK_FILE).exists()
    stackfile.remove(tmp_path, os.getpid())
    assert not (tmp_path / STACK_FILE).exists()
