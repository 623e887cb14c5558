# Every target installs what it needs first (scripts/bootstrap.sh is idempotent).
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: install test test-slow fuzz bench bench-store demo up lint clean

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

# Redis memory per finished job (MEMORY USAGE over its keys), and what retention holds.
bench-store: install
	$(PY) -m bench.store

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
