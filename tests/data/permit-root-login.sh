#!/bin/sh
# A provisioning variant that breaks the SSH policy: root may log in over SSH.
echo 'PermitRootLogin yes' > /etc/ssh/sshd_config.d/10-permit-root-login.conf
