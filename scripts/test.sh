#!/usr/bin/env bash
# The one command that checks everything: formatting, lints, the Rust tests,
# a release build, and the Python tests (redis-py patterns + the differential
# corpus against a reference redis-server).
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k scan    # extra arguments go to pytest
#
# On a fresh Debian machine it installs what it needs: redis-server and
# redis-tools (apt-get), a virtualenv in .venv with tests/python/requirements.txt.
# Every step runs even if an earlier one failed (except that the Python tests
# need the build); the exit status is non-zero if any step failed.

set -uo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

FAILED=()
SKIPPED=()
START=$SECONDS

step() { printf '\n==> %s\n' "$*"; }

# Runs a named step; records it as failed on a non-zero exit.
run() {
    local name=$1
    shift
    step "$name: $*"
    local t0=$SECONDS
    if "$@"; then
        echo "--- $name: ok ($((SECONDS - t0))s)"
        return 0
    fi
    echo "--- $name: FAILED ($((SECONDS - t0))s)"
    FAILED+=("$name")
    return 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root for: $*" >&2
        return 1
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null || { echo "apt-get not found; install $* by hand" >&2; return 1; }
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root apt-get update -q || return 1
        APT_UPDATED=1
    fi
    as_root apt-get install -y -q --no-install-recommends "$@"
}

# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------

ensure_redis() {
    if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
        return 0
    fi
    apt_install redis-server redis-tools || return 1
    # The Debian package may start a system instance on 6379; the tests
    # never use it (they start their own on free ports).
    command -v redis-server >/dev/null
}

ensure_venv() {
    local py=${PYTHON:-python3}
    if ! command -v "$py" >/dev/null; then
        apt_install python3 python3-venv || return 1
    fi
    if [ ! -x .venv/bin/python ]; then
        if ! "$py" -m venv .venv; then
            # Debian's python3 needs python3-venv for ensurepip.
            rm -rf .venv
            apt_install python3-venv && "$py" -m venv .venv || return 1
        fi
    fi
    # Reinstall only when the pins changed since the last install.
    local stamp=.venv/.requirements.installed
    if ! cmp -s tests/python/requirements.txt "$stamp"; then
        .venv/bin/python -m pip install -q -r tests/python/requirements.txt || return 1
        cp tests/python/requirements.txt "$stamp"
    fi
}

ensure_rust_component() {
    # $1: the cargo subcommand, $2: its rustup component.
    cargo "$1" --version >/dev/null 2>&1 && return 0
    command -v rustup >/dev/null && rustup component add "$2" >/dev/null 2>&1
    cargo "$1" --version >/dev/null 2>&1
}

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install the Rust toolchain (rustup) first" >&2
    exit 1
fi

run "redis-server" ensure_redis
run "python venv" ensure_venv

# --------------------------------------------------------------------------
# Rust
# --------------------------------------------------------------------------

if ensure_rust_component fmt rustfmt; then
    run "rustfmt" cargo fmt --all -- --check
else
    echo "rustfmt unavailable: skipping the format check"
    SKIPPED+=("rustfmt")
fi

if ensure_rust_component clippy clippy; then
    run "clippy" cargo clippy --all-targets --locked -- -D warnings
else
    echo "clippy unavailable: skipping lints"
    SKIPPED+=("clippy")
fi

# Rust integration tests start the debug binary (CARGO_BIN_EXE_ferrokv).
run "cargo test" cargo test --locked

# The Python tests run the optimized server, like a user would.
BUILD_OK=0
run "release build" cargo build --release --locked --bin ferrokv && BUILD_OK=1

# --------------------------------------------------------------------------
# Python
# --------------------------------------------------------------------------

if [ "$BUILD_OK" -eq 1 ] && [ -x .venv/bin/python ] && command -v redis-server >/dev/null; then
    pytest_step() {
        .venv/bin/python -m pytest tests/python -p no:cacheprovider "$@"
        local rc=$?
        # Exit 5 means pytest collected nothing: a broken harness, not a pass.
        [ "$rc" -eq 5 ] && echo "pytest collected no tests"
        return "$rc"
    }
    run "pytest" pytest_step "$@"
else
    echo "skipping the Python tests: they need the release build, .venv and redis-server"
    FAILED+=("pytest (not run)")
fi

# --------------------------------------------------------------------------

step "summary ($((SECONDS - START))s)"
[ ${#SKIPPED[@]} -gt 0 ] && echo "skipped: ${SKIPPED[*]}"
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "FAILED: ${FAILED[*]}"
    exit 1
fi
echo "all steps passed"
