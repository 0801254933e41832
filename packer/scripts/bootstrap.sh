#!/bin/sh
# bootstrap.sh: bring the freshly booted base up to date before anything is installed on it.
# Runs as root on the build VM; GOLDEN_PROVISION holds the files `golden build` uploaded.
set -eu
BOOTSTRAP_VERSION=1.0.0
export DEBIAN_FRONTEND=noninteractive
echo "bootstrap $BOOTSTRAP_VERSION: waiting for cloud-init to finish first boot"
cloud-init status --wait >/dev/null 2>&1 || true
echo "bootstrap: apt-get update and dist-upgrade"
apt-get -q update
apt-get -q -y -o Dpkg::Options::=--force-confold dist-upgrade
