#!/bin/sh
# cleanup.sh: leave nothing of the build in the image: no build key or user, no SSH host keys
# (cloud-init makes new ones at first boot), an empty machine-id, no logs, apt lists, cloud-init
# instance data, shell history, temporary files, or state every instance would share.
set -eu
CLEANUP_VERSION=1.2.0
BUILD_USER=golden-build
echo "cleanup $CLEANUP_VERSION"

rm -f /usr/sbin/policy-rc.d /etc/dpkg/dpkg.cfg.d/golden-build
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
rm -f /etc/apt/apt.conf.d/*proxy* /etc/apt/auth.conf /etc/apt/auth.conf.d/*
# debconf's and pam-auth-update's backups hold the build's earlier answers (a pam-old still has nullok).
rm -f /var/cache/debconf/*-old /etc/pam.d/*.pam-old /etc/ssh/*.pam-old
rm -rf /var/backups/* /var/log/installer

rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

cloud-init clean --logs --seed
rm -rf /var/lib/cloud/instances/* /var/lib/cloud/instance /var/lib/cloud/data /var/lib/cloud/sem

rm -f /root/.bash_history /root/.lesshst /root/.viminfo /home/*/.bash_history
rm -f /root/.ssh/known_hosts /root/.ssh/known_hosts.old
rm -rf /var/tmp/* /root/.cache /root/.ansible

# The build user's key goes now; Packer's open session survives. The user itself, its sudo rule,
# the uploaded files and everything the build writes until it stops go in the finaliser, which
# Packer's shutdown_command runs from /run (a tmpfs, so the finaliser is not in the image either).
rm -f "/home/$BUILD_USER/.ssh/authorized_keys"
sed "s/@BUILD_USER@/$BUILD_USER/g" > /run/golden-finalize <<'FIN'
#!/bin/sh
set -e
userdel --force --remove @BUILD_USER@ 2>/dev/null || true
rm -f /etc/sudoers.d/90-cloud-init-users
rm -rf /tmp/* /tmp/.[!.]* /var/lib/sudo/lectured/@BUILD_USER@
# userdel saved the databases with the build user in them as the shadow tools' backups.
for db in passwd shadow group gshadow subuid subgid; do
    if [ -e "/etc/$db" ]; then cp -p "/etc/$db" "/etc/$db-"; fi
done
# The name comes from the build's seed; cloud-init names each instance from its own at first boot.
echo localhost > /etc/hostname
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' > /etc/hosts
# These units write on stop (the random seed, wtmp's shutdown record, the last log lines), so they
# stop before their files go, and the forced poweroff below stops no unit that could write again.
systemctl stop rsyslog.service syslog.socket auditd.service chrony.service systemd-random-seed.service \
    systemd-update-utmp.service 2>/dev/null || true
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
journalctl --relinquish-var     # journald writes to /run until the image's first boot
rm -rf /var/log/journal/*
# Every instance would start from the build's entropy, DHCP identity (default-duid) and clock drift.
rm -f /var/lib/systemd/random-seed /var/lib/dhcp/* /var/lib/chrony/chrony.drift
sync
systemctl poweroff --force
FIN
chmod 0700 /run/golden-finalize
