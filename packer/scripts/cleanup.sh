#!/bin/sh
# cleanup.sh: leave nothing of the build in the image: no build key or user, no SSH host keys
# (cloud-init makes new ones at first boot), an empty machine-id, no logs, apt lists, cloud-init
# instance data, shell history or temporary files.
set -eu
CLEANUP_VERSION=1.1.0
BUILD_USER=golden-build
echo "cleanup $CLEANUP_VERSION"

rm -f /usr/sbin/policy-rc.d /etc/dpkg/dpkg.cfg.d/golden-build
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
rm -f /etc/apt/apt.conf.d/*proxy* /etc/apt/auth.conf /etc/apt/auth.conf.d/*

rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

cloud-init clean --logs --seed
rm -rf /var/lib/cloud/instances/* /var/lib/cloud/instance

find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
journalctl --relinquish-var     # journald writes to /run until the image's first boot
rm -rf /var/log/journal/*

rm -f /root/.bash_history /root/.lesshst /root/.viminfo /home/*/.bash_history
rm -rf /var/tmp/* /root/.cache /root/.ansible

# The build user's key goes now; Packer's open session survives. The user itself, its sudo rule
# and the uploaded files go in the finaliser, which Packer's shutdown_command runs from /run
# (a tmpfs, so the finaliser is not in the image either).
rm -f "/home/$BUILD_USER/.ssh/authorized_keys"
cat > /run/golden-finalize <<FIN
#!/bin/sh
set -e
userdel --force --remove $BUILD_USER 2>/dev/null || true
rm -f /etc/sudoers.d/90-cloud-init-users
rm -rf /tmp/* /tmp/.[!.]* /var/lib/sudo/lectured/$BUILD_USER
sync
systemctl poweroff
FIN
chmod 0700 /run/golden-finalize
