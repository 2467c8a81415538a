#!/usr/bin/env bash
# Install what is missing, then open HeatFormer Studio on the bundled sample. Extra arguments go to main.py.
# Without a display (a server, CI) it runs under Xvfb and saves a screenshot instead of showing a window.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/install.sh
if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
  echo "no display: starting under Xvfb and saving the window to app-screenshot.png"
  exec xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python main.py --screenshot app-screenshot.png --quit "$@"
fi
exec .venv/bin/python main.py "$@"
