#!/bin/bash
# hardening-cis.sh: apply the company CIS baseline (cis_checks/baseline.yaml) to the image.
#
# Input: $GOLDEN_PROVISION/plan.tsv, the baseline resolved by `golden build` for this image's
# role, level and exceptions: one row per value, `id <TAB> kind <TAB> fields...` (an empty field is
# `-`). Controls that carry an exception arrive as `id skip reason` rows and are left as they are.
# Idempotent: every file it owns is rewritten whole; permissions only ever lose bits.
# Output: /etc/golden/hardening.json, the record of what was applied, by CIS id, with this version.
HARDENING_VERSION="1.1.0"
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

# set_kv FILE SEP KEY VALUE: one effective setting; VALUE @present writes the bare flag, @absent removes it.
set_kv() {
    local file=$1 sep=$2 key=$3 value=$4 key_re
    key_re=$(printf '%s' "$key" | sed 's/[][\.*^$/]/\\&/g')
    mkdir -p "$(dirname "$file")"
    touch "$file"
    sed -i -E "/^[[:space:]]*${key_re}([[:space:]]|=|\$)/d" "$file"
    case "$value" in
        @absent) ;;
        @present) printf '%s\n' "$key" >> "$file" ;;
        *) printf '%s%s%s\n' "$key" "$sep" "$value" >> "$file" ;;
    esac
}

# dropin_kv FILE SECTION KEY VALUE: a systemd-style drop-in owned by this script.
dropin_kv() {
    local file=$1 section=$2 key=$3 value=$4
    mkdir -p "$(dirname "$file")"
    [ -s "$file" ] || { header; printf '[%s]\n' "$section"; } > "$file"
    printf '%s=%s\n' "$key" "$value" >> "$file"
}

apply_config() {
    local id kind source key value
    rm -f /etc/systemd/journald.conf.d/60-golden-cis.conf /etc/systemd/coredump.conf.d/60-golden-cis.conf \
          /etc/security/pwquality.conf.d/60-golden-cis.conf /etc/rsyslog.d/60-golden-cis.conf
    while IFS=$'\t' read -r id kind source key value; do
        case "$source" in
            journald) dropin_kv /etc/systemd/journald.conf.d/60-golden-cis.conf Journal "$key" "$value" ;;
            coredump) dropin_kv /etc/systemd/coredump.conf.d/60-golden-cis.conf Coredump "$key" "$value" ;;
            pwquality) set_kv /etc/security/pwquality.conf.d/60-golden-cis.conf " = " "$key" "$value" ;;
            faillock) set_kv /etc/security/faillock.conf " = " "$key" "$value" ;;
            auditd) set_kv /etc/audit/auditd.conf " = " "$key" "$value" ;;
            login_defs) set_kv /etc/login.defs $'\t' "$key" "$value" ;;
            useradd) set_kv /etc/default/useradd "=" "$key" "$value" ;;
            rsyslog) set_kv /etc/rsyslog.d/60-golden-cis.conf " " "$key" "$value" ;;
            *) log "error: no writer for configuration source $source ($id)"; exit 1 ;;
        esac
        APPLIED[$id]=1
    done < <(rows config)
}

apply_kernel_cmdline() {
    local id kind key value params=""
    while IFS=$'\t' read -r id kind key value; do
        params="$params $key=$value"
        APPLIED[$id]=1
    done < <(rows kernel_cmdline)
    [ -n "$params" ] || return 0
    mkdir -p /etc/default/grub.d
    { header; printf 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX%s"\n' "$params"; } > /etc/default/grub.d/60-golden-cis.cfg
    update-grub 2>&1 | sed 's/^/  update-grub: /'
}

apply_audit_rules() {
    local out=/etc/audit/rules.d/50-golden-cis.rules id kind rule
    [ -n "$(rows audit_rules)" ] || return 0
    mkdir -p /etc/audit/rules.d
    header > "$out"
    while IFS=$'\t' read -r id kind rule; do
        printf '%s\n' "$rule" >> "$out"
        APPLIED[$id]=1
    done < <(rows audit_rules)
    chmod 0640 "$out"
}

apply_banners() {
    local id kind path text
    while IFS=$'\t' read -r id kind path text; do
        printf '%b\n' "$text" > "$path"
        APPLIED[$id]=1
    done < <(rows banners)
}

# param ID KEY: a value of a logic-shaped control, for its cis_* function.
param() { awk -F'\t' -v i="$1" -v k="$2" '$1 == i && $2 == "params" && $3 == k {print $4; exit}' "$PLAN"; }

apply_files() {
    local id kind pattern mode owner groups absent current group path matched
    while IFS=$'\t' read -r id kind pattern mode owner groups absent; do
        APPLIED[$id]=1
        [ "$mode" = - ] && mode=""
        [ "$owner" = - ] && owner=""
        [ "$groups" = - ] && groups=""
        matched=""
        # Globs expand here, unquoted: GLOB_SAFE (facts.py) keeps patterns free of spaces and of
        # anything else the shell reads. An unmatched glob stays literal and fails the -e test.
        for path in $pattern; do
            [ -e "$path" ] || continue
            matched=1
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
        done
        [ -n "$matched" ] || [ "$absent" = absent_ok ] || log "warning: $pattern matches no file"
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
apply_config
apply_banners
apply_audit_rules
apply_kernel_cmdline
apply_controls
apply_files         # last: earlier steps (update-grub, new files) may reset permissions
write_record
log "applied ${#APPLIED[@]} controls; record in /etc/golden/hardening.json"
