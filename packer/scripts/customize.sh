#!/bin/sh
# customize.sh: run the image spec's own provisioning scripts (spec field `customize`), in order,
# after the hardening. `golden build` uploads them to $GOLDEN_PROVISION/customize/.
set -eu
dir=$GOLDEN_PROVISION/customize
[ -d "$dir" ] || exit 0
for script in "$dir"/*; do
    [ -f "$script" ] || continue
    echo "customize: $(basename "$script")"
    sh "$script"
done
