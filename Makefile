# Every target installs what it needs first (scripts/bootstrap.sh is idempotent).
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)

.PHONY: install test test-slow bench bench-sync demo up lint clean

install:
	@bash scripts/bootstrap.sh

test: install lint
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider

test-slow: install
	$(PY) -m pytest -q -m slow -p no:cacheprovider

bench: install
	$(PY) -m bench.run

# One 1080p frame by synchronous MPS SubmitSnapshotJob (official SDK, S3 input) vs the ffmpeg CLI.
bench-sync: install
	$(PY) -m bench.sync

demo: install
	$(PY) -m app.devstack demo

up: install
	$(PY) -m app.devstack up

# House rules that a machine can check: ruff everywhere, mypy --strict on the core and the frame engine.
lint: install
	$(PY) -m ruff check app workers tests bench
	$(PY) -m mypy app/core workers/frames

clean:
	rm -rf var .pytest_cache
