#!/usr/bin/env bash
# Tools the test suite runs that cannot live in uv.lock: checkov (its pins would downgrade
# boto3 and others) in its own uv tool environment. Prints the checkov path. Idempotent.
set -euo pipefail
export UV_PYTHON_DOWNLOADS=never
PYTHON="$(command -v python3.12 || ls "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12 2>/dev/null | head -1)"
"$PYTHON" -m uv --version >/dev/null 2>&1 || "$PYTHON" -m pip install --quiet --disable-pip-version-check uv
BIN="$("$PYTHON" -m uv tool dir --bin)"
if [ ! -x "$BIN/checkov" ]; then
  echo "installing checkov (synth matrix test)" >&2
  "$PYTHON" -m uv tool install --quiet --python "$PYTHON" checkov==3.3.30 >&2
fi
echo "$BIN/checkov"
