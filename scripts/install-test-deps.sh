#!/usr/bin/env bash
# Installs the system packages xenha's tests use, only when a binary is missing, and says so.
#   fence-agents            fence_dummy and the Python XenAPI client (/usr/share/fence/XenAPI.py)
#   prometheus              prometheus and promtool (rule and metric checks, end-to-end tests)
#   prometheus-alertmanager the Alertmanager that calls the remediation webhook in end-to-end tests
#   python3                 runs the fence agents and the XenAPI client
set -euo pipefail

declare -A need=(
  [/usr/sbin/fence_dummy]=fence-agents
  [/usr/share/fence/XenAPI.py]=fence-agents
  [/usr/bin/python3]=python3
  [/usr/bin/prometheus]=prometheus
  [/usr/bin/promtool]=prometheus
  [/usr/bin/prometheus-alertmanager]=prometheus-alertmanager
)

missing=()
for path in "${!need[@]}"; do
  if [ ! -e "$path" ]; then
    echo "install-test-deps: $path is missing (Debian package ${need[$path]})"
    missing+=("${need[$path]}")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-deps: every system binary the tests need is present"
  exit 0
fi

packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: apt-get not found; install these packages by hand: $packages" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-test-deps: not root and no sudo; run as root: apt-get install -y $packages" >&2
    exit 1
  fi
fi
echo "install-test-deps: installing with apt-get: $packages"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq $packages
