#!/bin/sh
# bootstrap.sh: bring the freshly booted base up to date before anything is installed on it.
# Runs as root on the build VM; GOLDEN_PROVISION holds the files `golden build` uploaded.
set -eu
BOOTSTRAP_VERSION=1.1.1
export DEBIAN_FRONTEND=noninteractive
echo "bootstrap $BOOTSTRAP_VERSION: waiting for cloud-init to finish first boot"
cloud-init status --wait >/dev/null 2>&1 || true

# While the image is built, packages do not start their services (they are enabled for the
# image's own boots) and dpkg does not fsync every file. cleanup.sh removes both settings.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/golden-build
# Package scripts reload systemd often; its generators make each reload several seconds slower
# under emulation. Masked in /run (a tmpfs): this lasts until the build VM powers off.
mkdir -p /run/systemd/system-generators
for g in /lib/systemd/system-generators/*; do ln -sf /dev/null "/run/systemd/system-generators/${g##*/}"; done

# A hardened base (a published golden image) mounts /tmp noexec; package configuration scripts
# that debconf extracts there would not run. Exec for this boot only: the image's own mount
# options apply again at its next boot.
if findmnt -n -o OPTIONS /tmp 2>/dev/null | tr ',' '\n' | grep -qx noexec; then
    echo "bootstrap: /tmp is mounted noexec; remounting it exec while the image is built"
    mount -o remount,exec /tmp
fi

echo "bootstrap: apt-get update and dist-upgrade"
apt-get -q -o Acquire::Languages=none update
apt-get -q -y -o Dpkg::Options::=--force-confold dist-upgrade
