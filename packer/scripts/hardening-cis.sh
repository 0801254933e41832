#!/bin/bash
# hardening-cis.sh: apply the company CIS baseline (cis_checks/baseline.yaml) to the image.
#
# Input: $GOLDEN_PROVISION/plan.tsv, the baseline resolved by `golden build` for this image's
# role, level and exceptions: one row per value, `id <TAB> kind <TAB> fields...`. Controls that
# carry an exception arrive as `id skip reason` rows and are left exactly as they are.
# Idempotent: every file it owns is rewritten whole; permissions only ever lose bits.
# Output: /etc/golden/hardening.json, the record of what was applied, by CIS id, with this version.
HARDENING_VERSION="1.0.0"
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
PLAN=$GOLDEN_PROVISION/plan.tsv
# shellcheck source=/dev/null
. "$GOLDEN_PROVISION/plan-meta.env"
declare -A APPLIED=()

rows() { awk -F'\t' -v k="$1" '$2 == k' "$PLAN"; }
log() { echo "hardening-cis $HARDENING_VERSION: $*"; }
header() { printf '# Written by hardening-cis.sh %s from the golden baseline; do not edit.\n' "$HARDENING_VERSION"; }

apply_sysctl() {
    local out=/etc/sysctl.d/60-golden-cis.conf id kind key value
    header > "$out"
    while IFS=$'\t' read -r id kind key value; do
        printf '%s = %s\n' "$key" "$value" >> "$out"
        sysctl -q -w "$key=$value" || log "warning: $key not settable at run time"
        APPLIED[$id]=1
    done < <(rows sysctl)
}

apply_kernel_modules() {
    local out=/etc/modprobe.d/60-golden-cis.conf id kind name
    header > "$out"
    while IFS=$'\t' read -r id kind name; do
        printf 'install %s /bin/false\nblacklist %s\n' "$name" "$name" >> "$out"
        modprobe -r "$name" 2>/dev/null || true
        APPLIED[$id]=1
    done < <(rows kernel_modules)
}

apply_sshd() {
    local out=/etc/ssh/sshd_config.d/50-golden-cis.conf id kind key value
    mkdir -p /etc/ssh/sshd_config.d
    header > "$out"
    while IFS=$'\t' read -r id kind key value; do
        printf '%s %s\n' "$key" "$value" >> "$out"
        APPLIED[$id]=1
    done < <(rows sshd)
    chmod 0600 "$out"
    sshd -t   # a broken sshd configuration fails the build here, not at first boot
}

apply_login_defs() {
    local id kind key value
    while IFS=$'\t' read -r id kind key value; do
        if grep -qE "^[[:space:]]*${key}[[:space:]]" /etc/login.defs; then
            sed -i -E "s|^[[:space:]]*${key}[[:space:]].*|${key}\t${value}|" /etc/login.defs
        else
            printf '%s\t%s\n' "$key" "$value" >> /etc/login.defs
        fi
        APPLIED[$id]=1
    done < <(rows login_defs)
}

apply_files() {
    local id kind path mode owner groups absent current group
    while IFS=$'\t' read -r id kind path mode owner groups absent; do
        APPLIED[$id]=1
        if [ ! -e "$path" ]; then
            [ "$absent" = absent_ok ] || log "warning: $path does not exist"
            continue
        fi
        [ -n "$owner" ] && chown "$owner" "$path"
        if [ -n "$groups" ]; then
            current=$(stat -L -c %G "$path")
            group=${groups%%|*}
            case "|$groups|" in *"|$current|"*) ;; *) chgrp "$group" "$path" ;; esac
        fi
        if [ -n "$mode" ]; then
            current=$(stat -L -c %a "$path")
            chmod "$(printf '%o' $(( 8#$current & 8#$mode )))" "$path"
        fi
    done < <(rows files)
}

apply_packages_absent() {
    local id kind name purge=()
    while IFS=$'\t' read -r id kind name; do
        dpkg-query -W -f '${db:Status-Status}' "$name" 2>/dev/null | grep -qx installed && purge+=("$name")
        APPLIED[$id]=1
    done < <(rows packages_absent)
    if [ ${#purge[@]} -gt 0 ]; then
        apt-get -q -y purge "${purge[@]}"
    fi
}

apply_packages_present() {
    local id kind name install=()
    while IFS=$'\t' read -r id kind name; do
        install+=("$name")
        APPLIED[$id]=1
    done < <(rows packages_present)
    if [ ${#install[@]} -gt 0 ]; then
        apt-get -q -y --no-install-recommends install "${install[@]}"
    fi
}

apply_services_not_in_use() {
    local id kind pkg unit
    while IFS=$'\t' read -r id kind pkg unit; do
        APPLIED[$id]=1
        dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || continue
        systemctl stop "$unit" 2>/dev/null || true
        systemctl mask "$unit"
    done < <(rows services_not_in_use)
}

apply_services_enabled() {
    local id kind unit
    while IFS=$'\t' read -r id kind unit; do
        systemctl unmask "$unit" >/dev/null 2>&1 || true
        systemctl enable "$unit"
        APPLIED[$id]=1
    done < <(rows services_enabled)
}

# Logic-shaped controls: a function named after the CIS id, called when the plan lists the id.
apply_controls() {
    local id kind fn
    while IFS=$'\t' read -r id kind; do
        fn="cis_${id//./_}"
        if declare -F "$fn" >/dev/null; then
            "$fn"
            APPLIED[$id]=1
        fi
    done < <(rows control)
}

write_record() {
    local ids skipped
    mkdir -p /etc/golden
    ids=$(printf '%s\n' "${!APPLIED[@]}" | sort -t. -k1,1n -k2,2n -k3,3n -k4,4n -k5,5n | sed 's/.*/"&"/' | paste -sd, -)
    skipped=$(rows skip | awk -F'\t' '{printf "%s{\"id\": \"%s\", \"reason\": \"%s\"}", (NR>1?", ":""), $1, $3}')
    cat > /etc/golden/hardening.json <<JSON
{
  "hardening_version": "$HARDENING_VERSION",
  "baseline_sha256": "$GOLDEN_BASELINE_SHA256",
  "role": "$GOLDEN_ROLE",
  "level": $GOLDEN_LEVEL,
  "image": "$GOLDEN_IMAGE",
  "applied": [$ids],
  "skipped": [$skipped]
}
JSON
    chmod 0644 /etc/golden/hardening.json
}

log "role $GOLDEN_ROLE, level $GOLDEN_LEVEL, $(cut -f1 "$PLAN" | sort -u | wc -l) controls in the plan"
apply_packages_absent
apply_packages_present
apply_services_not_in_use
apply_services_enabled
apply_kernel_modules
apply_sysctl
apply_sshd
apply_login_defs
apply_files
apply_controls
write_record
log "applied ${#APPLIED[@]} controls; record in /etc/golden/hardening.json"
