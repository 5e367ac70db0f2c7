#!/usr/bin/env bash
# Install everything hwnas needs on a fresh Debian machine with Python 3.11: the Fashion-MNIST
# Debian package (offline data), a venv at $HWNAS_VENV (default .venv) and hwnas with its test extras.
# Idempotent: a stamp of pyproject.toml skips the pip step when nothing changed (so the tests can then
# run in a network namespace with no route out).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${HWNAS_VENV:-.venv}
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null
  else
    echo "setup: install the Debian package dataset-fashion-mnist (or pass data_dir=...)" >&2
  fi
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
stamp="$VENV/.hwnas-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/pip" install -q --upgrade pip setuptools wheel
  # torch/torchvision pinned: these releases install from the local wheel cache in about a minute
  "$VENV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1
  "$VENV/bin/pip" install -q --no-build-isolation -e ".[test]"
  echo "$want" > "$stamp"
fi
