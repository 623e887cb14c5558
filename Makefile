# Every target installs what it needs first (scripts/bootstrap.sh is idempotent).
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: install test test-slow bench demo up flower lint clean

install:
	@bash scripts/bootstrap.sh

test: install lint
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider

test-slow: install
	$(PY) -m pytest -q -m slow -p no:cacheprovider

bench: install
	$(PY) -m bench.run

demo: install
	$(PY) -m app.devstack demo

up: install
	$(PY) -m app.devstack up

# Flower on 127.0.0.1:5555, on the broker OPENMPS_BROKER_URL / OPENMPS_REDIS_URL names (the same
# settings as the workers; they send task events unless OPENMPS_TASK_EVENTS=false).
flower: install
	$(PY) -m celery -A workers.celery_app:celery_app flower --address=127.0.0.1 --port=$${FLOWER_PORT:-5555}

# House rules that a machine can check: ruff lint and format everywhere, the import contracts in
# pyproject.toml ([tool.importlinter]), mypy --strict on the core and the frame engine.
lint: install
	$(PY) -m ruff check app workers tests bench
	$(PY) -m ruff format --check app workers tests bench
	.venv/bin/lint-imports
	$(PY) -m mypy app/core workers/frames

clean:
	rm -rf var .pytest_cache
