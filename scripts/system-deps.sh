#!/usr/bin/env bash
# Install the Debian packages audiocap needs (Java for METEOR/SPICE, sound tools for the
# dataset builder). As root it runs apt-get; otherwise it prints the exact line to run.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Wait for a concurrent apt/dpkg instead of failing on its lock; retry once on a
  # transient fetch/unpack error.
  apt_opts="-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3"
  apt-get $apt_opts update -qq
  apt-get $apt_opts install -y -qq --no-install-recommends "${missing[@]}" \
    || { apt-get $apt_opts update -qq && apt-get $apt_opts install -y -qq --no-install-recommends "${missing[@]}"; }
else
  echo "audiocap needs these system packages; run as root:"
  echo "  apt-get update && $line"
  echo "(continuing: features that need them report themselves unavailable)"
fi
