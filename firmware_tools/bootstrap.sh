#!/usr/bin/env bash
# Set up GridGate on a fresh Debian / Raspberry Pi OS machine, then run the demo or the tests.
#   firmware_tools/bootstrap.sh demo    simulated dust monitor → gateway → local broker, live view
#   firmware_tools/bootstrap.sh test    the test suite
# Installs what is missing: mosquitto, python3-venv, gcc and python3-dev (apt-get; for the tests
# also systemd, whose systemd-analyze checks the service unit, chromium,
# which renders the status page, and nats-server, an MQTT 3.1.1-only broker that
# can cluster, for the fallback and failover tests), a virtual
# environment at .venv with the Python packages (pip). The test command runs
# ruff (lint and format) and mypy before pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-}"
case "$what" in
  demo|test) shift ;;
  *) echo "usage: $0 demo|test [arguments for the demo or pytest]" >&2; exit 64 ;;
esac

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "need root to run: $*" >&2; exit 1
  fi
}

missing=()
PATH="$PATH:/usr/sbin:/sbin"
command -v mosquitto >/dev/null || missing+=(mosquitto)
if [ "$what" = test ]; then
  command -v systemd-analyze >/dev/null || missing+=(systemd)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v nats-server >/dev/null || missing+=(nats-server)
fi
command -v python3 >/dev/null || missing+=(python3)
if command -v python3 >/dev/null && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=(python3-venv)
fi
# gcc and the Python headers compile the detection kernels ahead of time (gridgate warm):
# without them the daemon runs them through Numba's JIT, with about 110 MB more memory.
command -v cc >/dev/null || missing+=(gcc)
if command -v python3 >/dev/null && ! python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
  missing+=(python3-dev)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} with apt-get" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"GridGate needs Python 3.10 or newer; this is {sys.version.split()[0]}")
PY

stamp=.venv/.gridgate-installed
if [ ! -x .venv/bin/python ] || [ pyproject.toml -nt "$stamp" ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi

export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$PWD/.cache/numba}"
.venv/bin/gridgate warm  # quick once the cache holds them
case "$what" in
  demo) exec .venv/bin/python -m firmware_tools.demo "$@" ;;
  test)
    .venv/bin/ruff check --quiet .
    .venv/bin/ruff format --check --quiet . || { echo "ruff format would change the files above" >&2; exit 1; }
    .venv/bin/mypy
    exec .venv/bin/python -m pytest "$@"
    ;;
esac
