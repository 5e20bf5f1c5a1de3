#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (a test tool's own browser download cannot work on these machines).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "browser: installing Debian's chromium for the browser tests"
  (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; })
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "browser: /usr/bin/chromium is missing" >&2
  [ "${CI:-}" = "true" ] && exit 1
fi
exit 0
