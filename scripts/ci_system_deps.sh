#!/usr/bin/env bash
# System packages the test suite needs beyond Python and Node: Chromium and its WebDriver for
# the playground's browser tests (tests/browser). Idempotent: does nothing when both are there.
set -euo pipefail
have_browser() {
  { command -v chromium || command -v chromium-browser || command -v google-chrome; } >/dev/null 2>&1 &&
    { command -v chromedriver >/dev/null 2>&1 || [ -x "${CHROMEWEBDRIVER:-/nonexistent}/chromedriver" ]; }
}
if have_browser; then
  exit 0  # e.g. GitHub's Ubuntu runners ship Chrome and chromedriver ($CHROMEWEBDRIVER)
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "installing chromium and chromium-driver (browser tests)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
