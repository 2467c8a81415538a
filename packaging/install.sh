#!/usr/bin/env bash
# Idempotent set-up for Debian/Ubuntu: system libraries for Qt/VTK under X, a virtual environment in .venv,
# and the project with its Python dependencies. `--test` adds the test tools. Safe to run again: it only
# installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[[ "${1:-}" == "--test" ]] && extras="[test]"

# Qt's xcb platform plugin and VTK's OpenGL (Mesa) need these; xvfb gives a virtual display where none exists.
apt_packages=(xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
  libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1
  libdbus-1-3 libfontconfig1 libxrender1 libxi6 libsm6 libice6 libglib2.0-0)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  echo "installing system packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)${extras}"
if [[ ! -f "$stamp" ]]; then
  # torch is pinned to 2.13.0 in pyproject.toml; a CUDA build of 2.13.0 installed beforehand is kept.
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
  rm -f .venv/.installed-* && touch "$stamp"
fi
