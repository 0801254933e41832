#!/bin/sh
# install-agents.sh: install and enable the agents the image spec lists, and point the time
# daemon at the spec's time servers. Inputs (uploaded by `golden build`):
#   $GOLDEN_PROVISION/agents.tsv        name <TAB> packages (space-separated) <TAB> service
#   $GOLDEN_PROVISION/time-servers.txt  one host per line
set -eu
AGENTS_VERSION=1.1.0
export DEBIAN_FRONTEND=noninteractive
agents=$GOLDEN_PROVISION/agents.tsv
[ -s "$agents" ] || { echo "install-agents $AGENTS_VERSION: no agents listed"; exit 0; }

missing=""
for pkg in $(cut -f2 "$agents" | tr '\n' ' '); do
    dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "install-agents $AGENTS_VERSION: installing$missing"
    # shellcheck disable=SC2086
    apt-get -q -y --no-install-recommends install $missing
else
    echo "install-agents $AGENTS_VERSION: every agent package is already in the base"
fi

servers=$GOLDEN_PROVISION/time-servers.txt
if [ -s "$servers" ] && [ -d /etc/chrony ]; then
    sed -i -E 's/^(pool|server) /#&/' /etc/chrony/chrony.conf
    mkdir -p /etc/chrony/sources.d
    sed 's/^/server /; s/$/ iburst/' "$servers" > /etc/chrony/sources.d/golden.sources
fi

cut -f3 "$agents" | while read -r service; do
    [ -n "$service" ] || continue
    systemctl is-enabled --quiet "$service" 2>/dev/null || systemctl enable "$service"
done
