#!/bin/sh
# web-fix-netbase.sh: the emergency fix of the fleet's end-to-end test (customize+). netbase is
# rebuilt from the archive's own package at a higher version, 6.4 -> 6.4+golden1, as a security
# update would raise it; the test's feed lists CVE-2099-0003 in netbase as fixed in that version,
# so the image the fleet runs is affected and this rebuild is not.
set -eu
umask 022
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
version=$(dpkg-query -W -f '${Version}' netbase)
apt-get download -q "netbase=$version" 2>&1
dpkg-deb -R netbase_*.deb pkg
sed -i "s/^Version: .*/Version: $version+golden1/" pkg/DEBIAN/control
dpkg-deb -b pkg netbase-fixed.deb >/dev/null
dpkg -i netbase-fixed.deb
echo "web-fix-netbase.sh: netbase $(dpkg-query -W -f '${Version}' netbase)"
