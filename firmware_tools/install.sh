#!/usr/bin/env bash
# Install (or, run again, upgrade) GridGate as a systemd service, from this checkout.
#
#   sudo firmware_tools/install.sh                 install or upgrade, enable and (re)start
#   sudo firmware_tools/install.sh --config FILE   also install FILE as /etc/gridgate/site.toml
#   sudo firmware_tools/install.sh --uninstall     remove the program and the unit; keep config and state
#   sudo firmware_tools/install.sh --purge         remove config, state, cache and the user too
#
# What goes where:
#   /opt/gridgate/venv         the gateway, installed (not editable) into its own virtual environment
#   /etc/gridgate/site.toml    the site config, root:gridgate 0660 (an example on a first install);
#                              signed bundles replace it (docs/remote-management.md)
#   /etc/gridgate/profiles/    the site's own device profiles (searched before the shipped ones)
#   /etc/gridgate/credentials/ secrets, root-only; each file is passed to the service with LoadCredential
#   /var/lib/gridgate          the outbox and detection state, owned by the service user
#   /var/cache/gridgate/numba  compiled detection kernels, warmed here as the service user
# A re-run keeps config and state. Options for tests and image builds:
#   --root DIR   install under DIR instead of / (the user is still created on this machine);
#                implies --no-start
#   --no-start   do not enable or start the unit
#   --python P   the interpreter for the venv (default: the distribution's python3)
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$PWD

root=""
config=""
action=install
start=yes
python=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="${2:?--root needs a directory}"; start=no; shift 2 ;;
    --config) config="${2:?--config needs a file}"; shift 2 ;;
    --uninstall) action=uninstall; shift ;;
    --purge) action=purge; shift ;;
    --no-start) start=no; shift ;;
    --python) python="${2:?--python needs an interpreter}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (sudo $0 $*)" >&2
  exit 1
fi
PATH="$PATH:/usr/sbin:/sbin"
user=gridgate
opt="$root/opt/gridgate"
etc="$root/etc/gridgate"
state="$root/var/lib/gridgate"
cache="$root/var/cache/gridgate"
unit_dir="$root/etc/systemd/system"
systemd_running() { [ -z "$root" ] && [ -d /run/systemd/system ]; }
say() { printf 'install.sh: %s\n' "$*"; }

remove() {
  if systemd_running; then
    systemctl disable --now gridgate.service 2>/dev/null || true
  fi
  rm -rf "$unit_dir/gridgate.service" "$unit_dir/gridgate.service.d" "$opt"
  systemd_running && systemctl daemon-reload
  say "removed /opt/gridgate and the unit"
  if [ "$action" = purge ]; then
    rm -rf "$etc" "$state" "$cache"
    if [ -z "$root" ] && id "$user" >/dev/null 2>&1; then userdel "$user" || true; fi
    say "purged /etc/gridgate, /var/lib/gridgate, /var/cache/gridgate and user $user"
  else
    say "kept /etc/gridgate and /var/lib/gridgate (--purge removes them)"
  fi
}

if [ "$action" != install ]; then
  remove
  exit 0
fi

if [ -z "$python" ]; then
  python=/usr/bin/python3
  [ -x "$python" ] || python=$(command -v python3 || true)
fi
if [ -z "$python" ] || ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  say "installing python3 and python3-venv with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  python=/usr/bin/python3
fi
if ! command -v cc >/dev/null || ! "$python" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
  # For the kernels compiled ahead of time (gridgate warm, below); without them they run under the JIT.
  say "installing gcc and python3-dev with apt-get"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc python3-dev >/dev/null; } ||
    say "could not install gcc and python3-dev: the kernels will run under the JIT (about 110 MB more memory)"
fi
"$python" - <<'PY'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"GridGate needs Python 3.10 or newer; {sys.executable} is {sys.version.split()[0]}")
PY

if ! id "$user" >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/gridgate --no-create-home \
    --shell /usr/sbin/nologin --comment "GridGate edge gateway" "$user"
  say "created system user $user"
fi
getent group dialout >/dev/null && usermod -a -G dialout "$user"

# The program. A re-run upgrades the venv in place; pip rolls back a package whose install fails.
mkdir -p "$opt"
if ! "$opt/venv/bin/python" -c '' 2>/dev/null; then
  rm -rf "$opt/venv"
  "$python" -m venv "$opt/venv"
  "$opt/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
fi
"$opt/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade "$source_dir"
install -m 0644 README.md "$opt/README.md"
rm -rf "$opt/docs" && cp -r docs "$opt/docs" && chmod -R u=rwX,go=rX "$opt/docs"
say "installed $("$opt/venv/bin/gridgate" --version) into /opt/gridgate/venv"

# Config: readable by the service's group, not by others; secrets readable by root alone. The
# service may replace site.toml itself (a signed config bundle, a reload that rolls back), by an
# atomic rename beside it: the directory and the file are group-writable, nothing else is.
install -d -m 0770 -o root -g "$user" "$etc"
install -d -m 0750 -o root -g "$user" "$etc/profiles"
install -d -m 0700 -o root -g root "$etc/credentials"
if [ -n "$config" ]; then
  install -m 0660 -o root -g "$user" "$config" "$etc/site.toml"
  say "installed $config as /etc/gridgate/site.toml"
elif [ ! -e "$etc/site.toml" ]; then
  install -m 0660 -o root -g "$user" configs/site.toml "$etc/site.toml"
  say "installed an example /etc/gridgate/site.toml: edit it, then systemctl restart gridgate"
else
  chgrp "$user" "$etc/site.toml" && chmod g+rw,o-rwx "$etc/site.toml"
fi
install -d -m 0750 -o "$user" -g "$user" "$state" "$cache" "$cache/numba"

# Kernels compiled as the service user, where the unit's NUMBA_CACHE_DIR points.
as_service() { runuser -u "$user" -- env -i PATH=/usr/bin:/bin HOME="$state" "$@"; }
warm_started=$(date +%s.%N)
as_service NUMBA_CACHE_DIR="$cache/numba" "$opt/venv/bin/gridgate" warm >/dev/null
say "detection kernels warmed in /var/cache/gridgate/numba ($(awk "BEGIN{printf \"%.1f\", $(date +%s.%N)-$warm_started}") s)"

# The unit, and a drop-in passing each credential file to the service.
install -d -m 0755 "$unit_dir"
install -m 0644 systemd/gridgate.service "$unit_dir/gridgate.service"
dropin="$unit_dir/gridgate.service.d"
rm -f "$dropin/credentials.conf"
credentials=$(find "$etc/credentials" -maxdepth 1 -type f -printf '%f\n' | sort)
if [ -n "$credentials" ]; then
  install -d -m 0755 "$dropin"
  {
    echo "# Written by install.sh from the files in /etc/gridgate/credentials; config: credential:NAME"
    echo "[Service]"
    for name in $credentials; do echo "LoadCredential=$name:/etc/gridgate/credentials/$name"; done
  } >"$dropin/credentials.conf"
  say "credentials passed to the service: $(echo "$credentials" | tr '\n' ' ')"
fi

# Check the config as the service would see it, before starting anything: as its
# user, with the credentials where systemd would hand them over (readable by it alone).
handed=$(mktemp -d)
cp -a "$etc/credentials/." "$handed/"
chown -R "$user:$user" "$handed" && chmod -R u=rX,go= "$handed"
config_ok=yes
as_service CREDENTIALS_DIRECTORY="$handed" "$opt/venv/bin/gridgate" check "$etc/site.toml" || config_ok=no
rm -rf "$handed"
if [ "$config_ok" = no ]; then
  say "the config has problems (above): fix /etc/gridgate/site.toml, then systemctl restart gridgate"
  start=no
fi

if [ "$start" = yes ] && systemd_running; then
  systemctl daemon-reload
  systemctl enable gridgate.service >/dev/null 2>&1
  systemctl restart gridgate.service
  say "gridgate.service enabled and (re)started: journalctl -u gridgate -f"
elif systemd_running; then
  systemctl daemon-reload
fi
[ "$config_ok" = yes ]
