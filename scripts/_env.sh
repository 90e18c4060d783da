# Shared by scripts/demo and scripts/test: create .venv and install ibdesk into it.
# Idempotent and quiet when everything is already installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${IBDESK_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment in $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
EXTRAS="${1:-}"
STAMP="$VENV/.ibdesk-installed$EXTRAS"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
  echo "installing ibdesk$EXTRAS and its dependencies (first run takes a few minutes)" >&2
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT$EXTRAS"
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
