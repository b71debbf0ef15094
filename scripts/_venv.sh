# Shared by scripts/run and scripts/test: make sure .venv exists and holds the given requirements.
# Usage: source scripts/_venv.sh requirements.txt
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$PROJECT_DIR/.venv"
REQUIREMENTS="$PROJECT_DIR/$1"
PYTHON="${PYTHON:-python3}"

if ! command -v "$PYTHON" >/dev/null; then
    echo "Slider Sync needs Python 3.11 or newer ($PYTHON was not found)." >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Slider Sync needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version)." >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> Creating the virtual environment in .venv"
    if ! "$PYTHON" -m venv "$VENV"; then
        echo "Could not create a virtual environment. On Debian/Ubuntu: apt-get install python3-venv" >&2
        exit 1
    fi
fi

# pip reads `./client` in requirements.txt (the Python client) relative to the current folder.
cd "$PROJECT_DIR"

# Install only when the requirement files or the client package changed since the last install
# (pip copies the client into .venv, so a change to its code needs an install too).
stamp="$VENV/.installed-$(
    cat requirements*.txt client/pyproject.toml $(find client/src -type f -name '*.py' | sort) |
        sha256sum | cut -c1-16
)-$(basename "$REQUIREMENTS")"
if [ ! -f "$stamp" ]; then
    echo "==> Installing $(basename "$REQUIREMENTS") into .venv"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    rm -f "$VENV"/.installed-*-"$(basename "$REQUIREMENTS")"
    touch "$stamp"
fi

export PATH="$VENV/bin:$PATH"
