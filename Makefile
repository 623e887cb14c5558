# Every target installs what it needs first (scripts/bootstrap.sh is idempotent).
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: install test test-slow fuzz bench bench-sync bench-load bench-store bench-memory bench-fleet demo up flower lint clean

install:
	@bash scripts/bootstrap.sh

test: install lint
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider

test-slow: install
	$(PY) -m pytest -q -m slow -p no:cacheprovider

# Property-based fuzzing of every native and MNS endpoint at full size (make test runs a few
# dozen examples of the same tests): over 5 000 requests, none may answer >= 500.
fuzz: install
	OPENMPS_FUZZ_PROFILE=fuzz $(PY) -m pytest -q -s -p no:cacheprovider tests/fuzz

bench: install
	$(PY) -m bench.run

# One 1080p frame by synchronous MPS SubmitSnapshotJob (official SDK, S3 input) vs the ffmpeg CLI.
bench-sync: install
	$(PY) -m bench.sync

# Redis memory per finished job by job shape (MEMORY USAGE over its keys), and what retention holds.
bench-memory: install
	$(PY) -m bench.memory

# Submission throughput and latency against a bare Flask endpoint (wrk; no workers running).
bench-load: install
	$(PY) -m bench.load

# The job store at 100 and 100 000 queued jobs; Redis bytes per finished job.
bench-store: install
	$(PY) -m bench.store

# Worker hosts in network namespaces (1, 2, 4) against one Redis and one S3 server (root only).
bench-fleet: install
	$(PY) -m bench.fleet

demo: install
	$(PY) -m app.devstack demo

up: install
	$(PY) -m app.devstack up

# Flower on 127.0.0.1:5555, on the broker OPENMPS_BROKER_URL / OPENMPS_REDIS_URL names (the same
# settings as the workers; they send task events unless OPENMPS_TASK_EVENTS=false).
flower: install
	$(PY) -m celery -A workers.celery_app:celery_app flower --address=127.0.0.1 --port=$${FLOWER_PORT:-5555}

# House rules that a machine can check: ruff lint and format everywhere, the import contracts in
# pyproject.toml ([tool.importlinter]), mypy --strict on the core, the gateway and the frame engine.
lint: install
	$(PY) -m ruff check app workers openmps tests bench
	$(PY) -m ruff format --check app workers openmps tests bench
	.venv/bin/lint-imports
	$(PY) -m mypy app/core app/gateway workers/frames openmps

clean:
	rm -rf var .pytest_cache
