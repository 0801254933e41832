#!/bin/sh
# setup.sh: make this Debian 12 machine able to build, boot and test golden images, then run
# the given command inside the project's virtualenv.
#
#   ./setup.sh golden run          # the main job: build, boot, test, gate, publish (default spec)
#   ./setup.sh pytest tests        # the whole test suite, end-to-end tests included
#
# Installs Debian packages with apt-get (as root) and Python packages into .venv, pinned by
# requirements.lock. Safe to run again: it only installs what is missing or changed.
set -eu
cd "$(dirname "$0")"

APT_PACKAGES="packer qemu-system-x86 qemu-utils mmdebstrap xorriso e2fsprogs fdisk util-linux mount
 git openssh-client python3 python3-venv ca-certificates debian-archive-keyring chrony
 shellcheck prometheus golang-go golang-github-vmware-govmomi-dev chromium openssh-server"

missing=""
for pkg in $APT_PACKAGES; do
    dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || { echo "setup.sh: run as root to install:$missing" >&2; exit 2; }
    echo "setup.sh: installing Debian packages:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q update >&2
    # shellcheck disable=SC2086
    apt-get -q -y --no-install-recommends install $missing >&2
fi

stamp=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.golden-stamp 2>/dev/null)" != "$stamp" ]; then
    echo "setup.sh: preparing .venv" >&2
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock >&2
    .venv/bin/pip install -q --disable-pip-version-check --no-deps -e . >&2
    echo "$stamp" > .venv/.golden-stamp
fi

[ $# -gt 0 ] || { echo "usage: ./setup.sh COMMAND [ARG...]   e.g. ./setup.sh golden run" >&2; exit 2; }
PATH="$PWD/.venv/bin:$PATH"
export PATH
exec "$@"
