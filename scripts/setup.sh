#!/usr/bin/env bash
# Prepares a checkout to run: Debian packages, a virtual environment in .venv and the
# Python packages. Safe to run again; it only does what is missing.
# Usage: scripts/setup.sh [--test]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Debian packages needed at run time (speech, audio) and to build the venv.
debs=(espeak-ng libportaudio2 alsa-utils python3-venv)
# The tests also check the Pi installer with shellcheck, the shipped name list against
# the Dutch word list (wdutch), watch for sockets with strace and check the unit with
# systemd-analyze, run the installer itself (it copies with rsync), and open the HTML
# report in a real browser (chromium, headless).
[ "$want_test" -eq 1 ] && debs+=(shellcheck wdutch strace systemd rsync chromium)
# The processor; INTERVISIE_MACHINE stands in for it in the tests.
machine="${INTERVISIE_MACHINE:-$(uname -m)}"
case "$machine" in
    aarch64|armv7l) debs+=(libatomic1) ;;  # Vosk needs it on ARM
    armv6l)
        # pyproject.toml leaves Vosk out there (it has no build for armv6l).
        echo "setup: this is a Pi Zero or Pi 1 (armv6l): speech recognition (Vosk) has no build for it and is" \
            "left out. The assistant keeps time and speaks, but takes no notes; set [listening] enabled = false." ;;
esac

missing=()
for pkg in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A Python that already has venv (pyenv, a custom build) does not need python3-venv.
if printf '%s\n' "${missing[@]}" | grep -qx python3-venv && python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing=("${missing[@]/python3-venv}")
    read -r -a missing <<<"${missing[*]}"
fi

if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: please install these Debian packages first: ${missing[*]}" >&2
        exit 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        apt_get=(apt-get)
    elif command -v sudo >/dev/null 2>&1; then
        apt_get=(sudo apt-get)
    else
        echo "setup: these Debian packages are missing: ${missing[*]}" >&2
        echo "setup: run as root: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${apt_get[@]}" update -qq
    "${apt_get[@]}" install -y -qq "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating the virtual environment in .venv"
    python3 -m venv .venv
fi

extras="pi"
[ "$want_test" -eq 1 ] && extras="pi,test"
# Reinstall only when the project definition or the wanted extras changed.
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras/,/-}"
if [ ! -e "$stamp" ]; then
    echo "setup: installing the Python packages into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
