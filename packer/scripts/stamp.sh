#!/bin/sh
# stamp.sh: install the image's own record of what it is (version, image, role, level, build time,
# commit, spec), written by `golden build` (pipeline/image/stamp.py) as $GOLDEN_PROVISION/image.json.
# Runs before customize.sh, so the spec's own scripts can read it.
set -eu
STAMP_VERSION=1.0.0
dest=/etc/golden/image.json
src=$GOLDEN_PROVISION/image.json
[ -s "$src" ] || { echo "stamp $STAMP_VERSION: no $src uploaded" >&2; exit 1; }
install -d -m 0755 -o root -g root "${dest%/*}"
install -m 0644 -o root -g root "$src" "$dest"
echo "stamp $STAMP_VERSION: $dest says $(grep -o '"version": *"[^"]*"' "$dest")"
