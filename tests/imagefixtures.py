"""A tiny image root on disk (dpkg status, os-release) for the SBOM and scan tests."""

import os

FEEDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "feeds")

# Real dpkg status paragraphs, trimmed: an epoch, a Source carrying another version (lvm2, binNMU
# bash), the signed kernel, and a removed package whose config files remain (not in the image).
STATUS = """\
Package: openssh-server
Status: install ok installed
Priority: optional
Section: net
Installed-Size: 1960
Maintainer: Debian OpenSSH Maintainers <debian-ssh@lists.debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: openssh
Version: 1:9.2p1-2+deb12u3
Depends: libc6 (>= 2.36), openssh-client (= 1:9.2p1-2+deb12u3)
Description: secure shell (SSH) server, for secure access from remote machines

Package: openssh-client
Status: install ok installed
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u3
Description: secure shell (SSH) client, for secure access to remote machines

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

Package: libattr1
Status: install ok installed
Architecture: amd64
Source: attr
Version: 1:2.5.1-4
Description: extended attribute handling - shared library

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
Description: compression library - runtime

Package: bash
Essential: yes
Status: install ok installed
Architecture: amd64
Source: bash (5.2.15-2)
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell

Package: dmsetup
Status: install ok installed
Architecture: amd64
Source: lvm2 (2.03.16-2)
Version: 2:1.02.185-2
Description: Linux Kernel Device Mapper userspace library

Package: linux-image-6.1.0-56-cloud-amd64
Status: install ok installed
Architecture: amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Description: Linux 6.1 for x86-64 cloud

Package: base-files
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: nano
Status: deinstall ok config-files
Architecture: amd64
Version: 7.2-1+deb12u1
Conffiles:
 /etc/nanorc 7e5e5c6b2f0a0d1b5ba3c8f6e2b1f1a1
Description: small, friendly text editor inspired by Pico
"""

OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""


def make_root(base, status=STATUS, os_release=OS_RELEASE):
    root = os.path.join(base, "root")
    os.makedirs(os.path.join(root, "var", "lib", "dpkg"), exist_ok=True)
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    with open(os.path.join(root, "var", "lib", "dpkg", "status"), "w", encoding="utf-8") as fh:
        fh.write(status)
    if os_release is not None:
        with open(os.path.join(root, "etc", "os-release"), "w", encoding="utf-8") as fh:
            fh.write(os_release)
    return root
