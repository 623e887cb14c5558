# Every target installs what it needs first (scripts/bootstrap.sh is idempotent).
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: install test test-slow bench bench-load bench-store bench-fleet demo up lint clean

install:
	@bash scripts/bootstrap.sh

test: install lint
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider

test-slow: install
	$(PY) -m pytest -q -m slow -p no:cacheprovider

bench: install
	$(PY) -m bench.run

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

# House rules that a machine can check: ruff lint and format everywhere, the import contracts in
# pyproject.toml ([tool.importlinter]), mypy --strict on the core and the frame engine.
lint: install
	$(PY) -m ruff check app workers tests bench
	$(PY) -m ruff format --check app workers tests bench
	.venv/bin/lint-imports
	$(PY) -m mypy app/core workers/frames

clean:
	rm -rf var .pytest_cache
