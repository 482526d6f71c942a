# Shared by scripts/serve and scripts/test: find Python 3.12, install uv if missing, sync the
# locked dependencies. Needs only Python 3.12 (and Node for the CDK CLI) on the machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export UV_PYTHON_DOWNLOADS=never

find_python() {
  local candidate
  for candidate in python3.12 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    local root
    root="$(pyenv root)"
    for candidate in "$root"/versions/3.12*/bin/python3.12; do
      [ -x "$candidate" ] && { echo "$candidate"; return 0; }
    done
  fi
  echo "error: Python 3.12 is required (python3.12 not found)" >&2
  return 1
}

PYTHON="$(find_python)"
export UV_PYTHON="$PYTHON"
if ! "$PYTHON" -m uv --version >/dev/null 2>&1; then
  echo "installing uv for $PYTHON" >&2
  "$PYTHON" -m pip install --quiet --disable-pip-version-check uv
fi
uv() { "$PYTHON" -m uv "$@"; }
uv sync --frozen --quiet
