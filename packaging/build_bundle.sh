#!/usr/bin/env bash
# Build the one-folder desktop bundle with PyInstaller (build/bundle/dist/heatformer-studio/), then smoke-test it:
# start the built app under Xvfb on its bundled sample with --screenshot ... --quit and check the screenshot.
# Takes several minutes and about 1.5 GB of disk (torch, Qt, VTK); not part of the default test run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/install.sh
.venv/bin/python -m pip install -q --disable-pip-version-check "pyinstaller>=6.10"
.venv/bin/python -m PyInstaller --noconfirm --log-level WARN --distpath build/bundle/dist \
  --workpath build/bundle/work packaging/heatformer_studio.spec
app=build/bundle/dist/heatformer-studio/heatformer-studio
shot=build/bundle/smoke-screenshot.png
rm -f "$shot"
# Run from an unrelated folder, with an empty settings home: the bundle must find everything by itself.
home=$(mktemp -d)
(cd "$home" && XDG_CONFIG_HOME="$home" xvfb-run -a -s "-screen 0 1920x1080x24" \
  "$OLDPWD/$app" --screenshot "$OLDPWD/$shot" --quit)
.venv/bin/python packaging/check_screenshot.py "$shot"
du -sh build/bundle/dist/heatformer-studio
