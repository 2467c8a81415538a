#!/usr/bin/env bash
# Install what is missing (test tools included), then run the whole test suite; GUI tests run under Xvfb
# (Qt's offscreen platform gives VTK no OpenGL context). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/install.sh --test
unset QT_QPA_PLATFORM
exec xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python -m pytest -q "$@"
