#!/usr/bin/env bash
# Install the Debian packages the local backend needs, when missing and when we can (root or sudo).
set -u
packages=(task-spooler rsync openssh-client)
[ "${DOE_INSTALL_TEST_PACKAGES:-0}" = 1 ] && packages+=(openssh-server shellcheck iproute2 gcc libc6-dev slurm-wlm munge chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo); else
  echo "doe: missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "doe: missing packages ${missing[*]} and no apt-get here; install them with your package manager" >&2
  exit 0
fi
echo "doe: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
