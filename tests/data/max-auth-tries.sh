#!/bin/sh
# A provisioning variant that breaks one CIS control (5.1.16) and nothing else: one password guess
# per connection more than the hardening allows. The hardening wrote the baseline's bound (at_most
# N becomes MaxAuthTries N), so the effective value plus one violates whatever the bound is now.
set -eu
allowed=$(sshd -T | awk '$1 == "maxauthtries" {print $2}')
[ -n "$allowed" ] || { echo "max-auth-tries.sh: sshd -T prints no maxauthtries" >&2; exit 1; }
# Mode 0600 root:root, as CIS 5.1.1 asks of every drop-in: only 5.1.16 may fail.
install -m 0600 -o root -g root /dev/null /etc/ssh/sshd_config.d/10-max-auth-tries.conf
echo "MaxAuthTries $((allowed + 1))" > /etc/ssh/sshd_config.d/10-max-auth-tries.conf
