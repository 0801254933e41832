#!/bin/bash
# hardening-cis.sh: apply the company CIS baseline (cis_checks/baseline.yaml) to the image.
#
# Input, in $GOLDEN_PROVISION (written by pipeline/image/hardening.py): plan.tsv, the baseline
# resolved for this image's role, level and exceptions, one row per value (`id kind fields...`);
# plan-columns.tsv, the name of every field of each kind's rows; plan-meta.env, the image and the
# names both sides share; hardening/, this version's appliers (one per kind) and CIS sections
# (the logic-shaped controls). Controls that carry an exception arrive as `skip` rows and are left.
# Idempotent: every file it owns is rewritten whole; permissions only ever lose bits.
# Output: the record of what was applied, by CIS id, with this version and the fingerprint of what
# the outcome depends on ($GOLDEN_FILE_RECORD); with that fingerprint already recorded, nothing is done.
HARDENING_VERSION="1.3.0"
export HARDENING_VERSION   # read by the parts it sources
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
# shellcheck source=/dev/null
. "$GOLDEN_PROVISION/plan-meta.env"
for part in "$GOLDEN_PROVISION"/hardening/lib.sh "$GOLDEN_PROVISION"/hardening/appliers/*.sh \
            "$GOLDEN_PROVISION"/hardening/cis/*.sh; do
    # shellcheck source=/dev/null
    . "$part"
done

# A layer on a published image hardened by this code and plan, with no package changed since, has
# nothing to apply: its base's record stays (its customize steps run after this, as in every build,
# and the gate tests the whole image again).
fingerprint=$(hardening_fingerprint)
if already_hardened "$fingerprint"; then
    log "already applied: $GOLDEN_FILE_RECORD records this version, plan and package set ($fingerprint)"
    exit 0
fi
log "role $GOLDEN_ROLE, level $GOLDEN_LEVEL, $(controls_in_plan) controls in the plan"
apply_packages_absent
apply_packages_present
apply_services_not_in_use
apply_services_enabled
apply_mounts
apply_kernel_modules
apply_sysctl
apply_sshd
apply_config
apply_pam
apply_banners
apply_audit_rules
apply_kernel_cmdline
apply_controls
refresh_grub_if_stale
apply_files         # last: earlier steps (update-grub, new files) may reset permissions
write_record
log "applied ${#APPLIED[@]} controls; record in $GOLDEN_FILE_RECORD"
