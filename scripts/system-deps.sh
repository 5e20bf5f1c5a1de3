#!/usr/bin/env bash
# System libraries the Python packages need: WeasyPrint (the complaint report's PDF) loads Pango through
# ctypes, and the report needs a font with Hungarian letters (DejaVu). pip cannot install either.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
check() { "$PY" -c "import weasyprint" >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi dejavu; }
if check; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "system-deps: installing Debian's pango and DejaVu fonts for the PDF report"
  pkgs="libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fontconfig"
  (apt-get install -y -q $pkgs >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $pkgs >/dev/null; })
fi
if ! check; then
  echo "system-deps: WeasyPrint cannot load Pango, or no DejaVu font is installed (PDF report tests will fail)" >&2
  [ "${CI:-}" = "true" ] && exit 1
fi
exit 0
