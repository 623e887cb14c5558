"""The gunicorn hooks that are the app's own (``app.web.gunicorn_config``)."""

from __future__ import annotations

import gc
import importlib
import logging


def test_a_started_worker_moves_its_start_up_objects_out_of_the_collectors_reach() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    built_at_start = [{"n": n} for n in range(1000)]  # as the app and its modules, built before the hook
    try:
        # Imported here: the module sets up logging on import, as gunicorn reads it; the root
        # logger is put back afterwards so other tests see the handlers they started with.
        gunicorn_config = importlib.import_module("app.web.gunicorn_config")
        gunicorn_config.post_worker_init(worker=None)
        assert gc.get_freeze_count() >= len(built_at_start)
        still_collected = {id(o) for o in gc.get_objects()}
        assert not any(id(x) in still_collected for x in built_at_start)
    finally:
        gc.unfreeze()
        root.handlers[:] = handlers
        root.setLevel(level)
