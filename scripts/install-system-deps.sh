#!/usr/bin/env bash
# System packages some features and their tests need, installed with the machine's package manager:
#   nginx     lexperience serve --workers N (the entry point in front of the workers)
#   chromium  the browser tests of the Gradio app (Playwright drives the system Chromium)
#   libportaudio2  lexperience live: microphone and loudspeaker through sounddevice (PortAudio)
# Installs what is missing when it can (root or sudo, apt-get); otherwise prints what to install
# and leaves it (those tests then skip with that reason).
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
if command -v ldconfig >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q libportaudio; then
  need+=(libportaudio2)
fi
[ "${#need[@]}" -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
    echo "note: install ${need[*]} (e.g. sudo apt-get install ${need[*]}) for the service's" \
         "--workers mode, the browser tests and lexperience live" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: install ${need[*]} with your package manager for --workers, the browser tests and lexperience live" >&2
  exit 0
fi
echo "installing ${need[*]} (apt-get)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
