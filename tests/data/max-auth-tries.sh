#!/bin/sh
# A provisioning variant that breaks one CIS control (5.1.16) and nothing else: more password
# guesses per connection than the baseline allows.
echo 'MaxAuthTries 10' > /etc/ssh/sshd_config.d/10-max-auth-tries.conf
