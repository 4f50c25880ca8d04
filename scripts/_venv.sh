# Sourced by scripts/demo, scripts/test and scripts/nightly: create .venv if missing and
# install the package (editable) with the given extras, skipping the install when neither
# pyproject.toml nor the lock file has changed since the last one.
#
# The dependencies come from the lock file of those extras (requirements.lock, or
# requirements-EXTRAS.lock; written by scripts/lock): exact versions, each checked against
# its sha256 (`pip install --require-hashes`), then the package itself with --no-deps.
# The locks are for CPython 3.11 on Linux x86_64; elsewhere, or with FORECASTER_UNLOCKED=1,
# the dependencies are resolved from pyproject.toml as `pip install -e .` does.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
SHOWN="${VENV#"$PWD"/}"  # relative when under the current folder
EXTRAS="${1:-}"
LOCK="$ROOT/requirements${EXTRAS:+-$EXTRAS}.lock"
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $SHOWN" >&2
    "${PYTHON:-python3}" -m venv "$VENV"
fi
if [ "${FORECASTER_UNLOCKED:-0}" != 1 ] && [ -f "$LOCK" ] && "$VENV/bin/python" -c '
import platform, sys
sys.exit(not (sys.version_info[:2] == (3, 11) and sys.version_info >= (3, 11, 5)
              and sys.platform == "linux" and platform.machine() == "x86_64"))'; then
    LOCKED=1
else
    LOCKED=0
    if [ "${FORECASTER_UNLOCKED:-0}" != 1 ] && [ -f "$LOCK" ]; then
        echo "warning: $(basename "$LOCK") is for CPython 3.11 (>= 3.11.5) on Linux x86_64;" \
            "$("$VENV/bin/python" -c 'import platform, sys; print(platform.python_version(), sys.platform, platform.machine())')" \
            "installs unpinned versions from pyproject.toml instead" >&2
    fi
fi
STAMP="$VENV/.forecaster-install-$(echo "${EXTRAS:-base}" | tr -c 'a-z0-9' '_')"
WANT="$( { cat "$ROOT/pyproject.toml"; echo "locked=$LOCKED"; [ "$LOCKED" = 0 ] || cat "$LOCK"; } \
    | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "installing forecaster${EXTRAS:+[$EXTRAS]} into $SHOWN" \
        "$([ "$LOCKED" = 1 ] && echo "from $(basename "$LOCK")")" \
        "(first run downloads TensorFlow, ~600 MB)" >&2
    if [ "$LOCKED" = 1 ]; then
        "$VENV/bin/python" -m pip install --quiet --require-hashes -r "$LOCK" >&2
        # setuptools is in the lock: build the editable install with it, not a fresh download.
        "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT" >&2
    else
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
        "$VENV/bin/python" -m pip install --quiet -e "$ROOT${EXTRAS:+[$EXTRAS]}" >&2
    fi
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
