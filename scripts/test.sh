#!/usr/bin/env bash
# The test command: installs what it needs (scripts/setup.sh), then runs the whole suite on CPU.
# Tests start real Ray clusters; inside a sandbox wrap this in ../shared/tools/loopback-only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${HWNAS_VENV:-.venv}
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}
exec "$VENV/bin/python" -m pytest -q "$@"
