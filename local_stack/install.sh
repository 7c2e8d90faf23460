#!/usr/bin/env bash
# Installs a Docker-free LocalStack into <project root>/.localstack (idempotent, cached).
#
# What it makes:
#   .localstack/venv        Python 3.13 virtualenv: localstack-core (requirements.txt pinned by
#                           constraints.txt) + the local-process Lambda executor
#                           (local_stack/lambda_local_executor)
#   .localstack/filesystem  packages LocalStack would download on first use (the Kinesis engine,
#                           an npm package), linked into every run by server.py
#
# Needs Python 3.13 (python3.13 on PATH, pyenv's 3.13, or LOCALSTACK_PYTHON=/path/to/python3.13)
# and Node.js with npm. A second run with unchanged inputs exits at once: the hash of every
# input is kept in .localstack/venv/.installed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
HOME_DIR="$ROOT/.localstack"
VENV="$HOME_DIR/venv"
STAMP="$VENV/.installed"
EXECUTOR="$HERE/lambda_local_executor"
LOG="$HOME_DIR/install.log"

mkdir -p "$HOME_DIR"

inputs_hash() {
    cat "$HERE/requirements.txt" "$HERE/constraints.txt" "$EXECUTOR/pyproject.toml" \
        "$EXECUTOR"/lambda_local_executor/*.py | sha256sum | cut -d' ' -f1
}

# Fast path: nothing changed since the last successful install.
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(inputs_hash)" && -x "$VENV/bin/python" ]]; then
    exit 0
fi

# Two installs at once (e.g. two test sessions) would corrupt the venv: take turns.
if command -v flock >/dev/null; then
    exec 9>"$HOME_DIR/install.lock"
    flock 9
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(inputs_hash)" ]]; then
        exit 0
    fi
fi

is_python_313() {
    [[ -n "$1" ]] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null
}

find_python() {
    local candidate
    for candidate in "${LOCALSTACK_PYTHON:-}" python3.13 \
        "$(pyenv prefix 3.13.0 2>/dev/null)/bin/python" \
        "$(pyenv prefix 3.13 2>/dev/null)/bin/python"; do
        if is_python_313 "$candidate"; then
            command -v "$candidate"
            return
        fi
    done
    return 1
}

fail() {
    echo "install.sh: $*" >&2
    if [[ -s "$LOG" ]]; then
        echo "--- last lines of $LOG ---" >&2
        tail -n 30 "$LOG" >&2
    fi
    exit 1
}

started=$SECONDS
: >"$LOG"
rm -f "$STAMP"

if ! is_python_313 "$VENV/bin/python"; then
    PYTHON="$(find_python)" || fail "LocalStack needs Python 3.13 and none was found. Install it \
(e.g. 'pyenv install 3.13.0' or apt's python3.13 + python3.13-venv), or point \
LOCALSTACK_PYTHON at one."
    echo "Creating $VENV with $PYTHON"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" >>"$LOG" 2>&1 || fail "could not create a virtualenv with $PYTHON"
fi

command -v npm >/dev/null || fail "LocalStack's Kinesis engine is an npm package: install Node.js with npm"

echo "Installing LocalStack into $VENV (log: $LOG)"
"$VENV/bin/python" -m pip install --disable-pip-version-check \
    -r "$HERE/requirements.txt" -c "$HERE/constraints.txt" >>"$LOG" 2>&1 \
    || fail "pip could not install requirements.txt"

# Built from a copy: setuptools leaves build/ and *.egg-info behind in the source folder, and a
# stale build/ could ship deleted modules. Same version number on every change: force the
# reinstall so edits apply. setuptools is in requirements.txt, so the build downloads nothing.
build_copy="$(mktemp -d)"
trap 'rm -rf "$build_copy"' EXIT
cp -R "$EXECUTOR/." "$build_copy"
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-deps --force-reinstall \
    --no-build-isolation "$build_copy" >>"$LOG" 2>&1 \
    || fail "pip could not install $EXECUTOR"

echo "Pre-installing LocalStack's Kinesis engine into $HOME_DIR/filesystem"
OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$HOME_DIR/filesystem" \
    "$VENV/bin/python" -m localstack.cli.lpm install kinesis-mock >>"$LOG" 2>&1 \
    || fail "could not install the Kinesis engine (kinesis-mock)"

inputs_hash >"$STAMP"
echo "LocalStack installed in $((SECONDS - started)) s"
