#!/bin/bash
# hardening-cis.sh: apply the company CIS baseline (cis_checks/baseline.yaml) to the image.
#
# Input: $GOLDEN_PROVISION/plan.tsv, the baseline resolved by `golden build` for this image's
# role, level and exceptions: one row per value, `id <TAB> kind <TAB> fields...` (an empty field is
# `-`). Controls that carry an exception arrive as `id skip reason` rows and are left as they are.
# Idempotent: every file it owns is rewritten whole; permissions only ever lose bits.
# Output: /etc/golden/hardening.json, the record of what was applied, by CIS id, with this version.
HARDENING_VERSION="1.1.1"
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
    GRUB_STALE=1
}

# grub.cfg is generated once, after every step that changes its inputs (15-20 s under emulation).
GRUB_STALE=
refresh_grub() {
    update-grub 2>&1 | sed 's/^/  update-grub: /'
    GRUB_STALE=
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

installed() {
    [ "$(dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

apply_packages_absent() {
    local id kind name purge=()
    while IFS=$'\t' read -r id kind name; do
        installed "$name" && purge+=("$name")
        APPLIED[$id]=1
    done < <(rows packages_absent)
    if [ ${#purge[@]} -gt 0 ]; then
        apt-get -q -y purge "${purge[@]}"
    fi
}

apply_packages_present() {
    local id kind name install=()
    while IFS=$'\t' read -r id kind name; do
        # apt-get costs ~20 s under emulation even when it has nothing to do.
        installed "$name" || install+=("$name")
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
        installed "$pkg" || continue
        systemctl stop "$unit" 2>/dev/null || true
        systemctl mask "$unit"
    done < <(rows services_not_in_use)
}

apply_services_enabled() {
    local id kind unit
    while IFS=$'\t' read -r id kind unit; do
        APPLIED[$id]=1
        # Already enabled: leave it (enabling a unit with a SysV script takes 5-15 s under emulation).
        [ "$(systemctl is-enabled "$unit" 2>/dev/null)" = enabled ] && continue
        systemctl unmask "$unit" >/dev/null 2>&1 || true
        systemctl enable "$unit"
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

# ------------------------------------------------------------ CIS 1 (initial setup), 2.4 (cron, at), 3 (network)

apply_mounts() {
    local id target opts shipped separate
    # awk, not `read`: a tab is IFS whitespace, so `read` would merge the empty fields of a row.
    while IFS=$'\t' read -r target opts; do
        if awk -v t="$target" '$1 !~ /^#/ && $2 == t {found = 1} END {exit !found}' /etc/fstab; then
            awk -v t="$target" -v add="$opts" 'BEGIN {OFS = "\t"}
                $1 !~ /^#/ && $2 == t {n = split(add, a, ","); for (i = 1; i <= n; i++) if (index("," $4 ",", "," a[i] ",") == 0) $4 = $4 "," a[i]}
                {print}' /etc/fstab > /etc/fstab.golden
            cat /etc/fstab.golden > /etc/fstab
            rm -f /etc/fstab.golden
            if findmnt -n "$target" >/dev/null; then mount -o remount "$target"; fi
        elif [ "$target" = /tmp ]; then
            cp /usr/share/systemd/tmp.mount /etc/systemd/system/tmp.mount
            shipped=$(sed -n 's/^Options=//p' /usr/share/systemd/tmp.mount)
            mkdir -p /etc/systemd/system/tmp.mount.d
            { header; printf '[Mount]\nOptions=%s\n' "$(printf '%s,%s' "$shipped" "$opts" |
                awk -v RS=, 'NF && !seen[$0]++ {printf "%s%s", (n++ ? "," : ""), $0}')"; } \
                > /etc/systemd/system/tmp.mount.d/60-golden-cis.conf
            systemctl enable tmp.mount
        elif [ "$(findmnt -n -f -o FSTYPE "$target")" = tmpfs ]; then
            printf 'tmpfs\t%s\ttmpfs\tdefaults%s\t0\t0\n' "$target" "${opts:+,$opts}" >> /etc/fstab
            mount -o "remount${opts:+,$opts}" "$target"
        fi
    done < <(rows mounts | awk -F'\t' '{o[$3] = o[$3] ($4 == "" || $4 == "-" ? "" : "," $4)} END {for (t in o) print t "\t" substr(o[t], 2)}')
    while read -r id target separate; do
        if [ "$separate" = separate ] && [ "$target" != /tmp ] && ! findmnt -n "$target" >/dev/null; then
            log "warning: $id: $target is not a separate partition on this image; it needs an exception"
        else
            APPLIED[$id]=1
        fi
    done < <(rows mounts | awk -F'\t' '{print $1, $3, $5}')
}

# 1.3.1.4: profiles in complain mode (by flag or force-complain link) are switched to enforce.
cis_1_3_1_4() {
    local profile
    rm -f /etc/apparmor.d/force-complain/*
    for profile in $(grep -lsE '^[^#]*flags=\([^)]*complain' /etc/apparmor.d/*); do
        aa-enforce "$profile"
    done
}

# 1.4.1: a GRUB superuser whose password is random per build and never stored: only its PBKDF2
# hash is written, so the image holds no usable secret and nobody can edit a boot entry or open
# the GRUB shell at the console (recovery: attach the disk to another machine). Boot entries are
# --unrestricted, so the image still boots unattended.
cis_1_4_1() {
    local user hash password
    user=$(param 1.4.1 superuser)
    password=$(head -c 32 /dev/urandom | base64 -w0)
    hash=$(printf '%s\n%s\n' "$password" "$password" | grub-mkpasswd-pbkdf2 | awk '/grub\.pbkdf2\./ {print $NF}')
    unset password
    if [ -z "$hash" ]; then log "error: grub-mkpasswd-pbkdf2 printed no hash"; exit 1; fi
    { printf '#!/bin/sh\n'; header; printf "cat <<'EOF'\nset superusers=\"%s\"\npassword_pbkdf2 %s %s\nEOF\n" \
        "$user" "$user" "$hash"; } > /etc/grub.d/01_golden-password
    chmod 0755 /etc/grub.d/01_golden-password
    sed -i -E 's/^(CLASS="--class gnu-linux --class gnu --class os)"$/\1 --unrestricted"/' /etc/grub.d/10_linux
    refresh_grub
    if grep -E '^[[:space:]]*menuentry ' /boot/grub/grub.cfg | grep -qv -- '--unrestricted'; then
        log "error: grub.cfg has boot entries that would wait for the GRUB password"
        exit 1
    fi
}

# 1.5.3: no core dumps for any login (the sysctl and systemd-coredump parts are generic).
cis_1_5_3() {
    { header; printf '* hard core %s\n' "$(param 1.5.3 hard_core_limit)"; } > /etc/security/limits.d/60-golden-cis.conf
}

# 1.6.1: Debian's 10-uname adds `uname -snrvm` (OS, kernel, architecture) to the motd at login.
cis_1_6_1() {
    if [ -f /etc/update-motd.d/10-uname ]; then chmod a-x /etc/update-motd.d/10-uname; fi
}

# GDM (1.7.2-1.7.9) is configured although no desktop is installed: inert text until one is, and
# then locked down from the start. The login screen reads dconf database gdm, sessions `local`.
# cis_dconf DB FILE LINE...: a keyfile (or, for FILE locks/NAME, a lock list) of database DB.
cis_dconf() {
    local db=$1 file=$2
    shift 2
    mkdir -p "/etc/dconf/db/$db.d/locks" /etc/dconf/profile
    { header; printf '%s\n' "$@"; } > "/etc/dconf/db/$db.d/$file"
    printf 'user-db:user\nsystem-db:gdm\nfile-db:/usr/share/gdm/greeter-dconf-defaults\n' > /etc/dconf/profile/gdm
    printf 'user-db:user\nsystem-db:local\n' > /etc/dconf/profile/user
    if command -v dconf >/dev/null; then dconf update; fi
}

cis_1_7_2() {
    cis_dconf gdm 60-golden-cis-banner '[org/gnome/login-screen]' banner-message-enable=true \
        "banner-message-text='$(param 1.7.2 banner_text)'"
}

cis_1_7_3() {
    cis_dconf gdm 60-golden-cis-user-list '[org/gnome/login-screen]' disable-user-list=true
}

cis_1_7_4() {
    cis_dconf local 60-golden-cis-screensaver '[org/gnome/desktop/session]' "idle-delay=uint32 $(param 1.7.4 idle_delay)" \
        '[org/gnome/desktop/screensaver]' "lock-delay=uint32 $(param 1.7.4 lock_delay)"
}

cis_1_7_5() {
    cis_dconf local locks/60-golden-cis-screensaver /org/gnome/desktop/session/idle-delay \
        /org/gnome/desktop/screensaver/lock-delay
}

cis_1_7_6() {
    cis_dconf local 60-golden-cis-automount '[org/gnome/desktop/media-handling]' automount=false automount-open=false
}

cis_1_7_7() {
    cis_dconf local locks/60-golden-cis-automount /org/gnome/desktop/media-handling/automount \
        /org/gnome/desktop/media-handling/automount-open
}

cis_1_7_8() {
    cis_dconf local 60-golden-cis-autorun '[org/gnome/desktop/media-handling]' autorun-never=true
}

cis_1_7_9() {
    cis_dconf local locks/60-golden-cis-autorun /org/gnome/desktop/media-handling/autorun-never
}

# 1.7.10: no GDM configuration enables XDMCP.
cis_1_7_10() {
    local conf
    for conf in /etc/gdm3/daemon.conf /etc/gdm3/custom.conf; do
        if [ -f "$conf" ]; then
            sed -i -E '/^\[xdmcp\]/,/^\[/{/^[[:space:]]*Enable[[:space:]]*=[[:space:]]*true/d}' "$conf"
        fi
    done
}

# 2.4.1.8: only the users listed in cron.allow (root) may use crontab; cron.deny is then ignored.
cis_2_4_1_8() {
    printf 'root\n' > /etc/cron.allow
    chown root:crontab /etc/cron.allow
    chmod 0640 /etc/cron.allow
}

# 2.4.2.1: the same for at, written even without at installed so that installing it later
# does not open it to every user.
cis_2_4_2_1() {
    printf 'root\n' > /etc/at.allow
    chown root:daemon /etc/at.allow
    chmod 0640 /etc/at.allow
}

# ------------------------------------------------------------ CIS 2.1 (services), 2.3 (time), 4 (firewall), 5.1 (sshd), 5.2 (sudo)

cis_2_1_21() {
    if command -v postconf >/dev/null; then
        postconf -e 'inet_interfaces = loopback-only'
    fi
    if [ -f /etc/exim4/update-exim4.conf.conf ]; then
        set_kv /etc/exim4/update-exim4.conf.conf "=" dc_local_interfaces "'127.0.0.1 ; ::1'"
        update-exim4.conf
    fi
}

# 2.3.3.1: chrony asks only authorized servers. Other sources are commented out; if none is left,
# chrony is pointed at every authorized server (the image spec normally picks them: install-agents.sh).
cis_2_3_3_1() {
    local servers f kept
    servers=$(param 2.3.3.1 servers)
    for f in /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf /etc/chrony/sources.d/*.sources; do
        [ -f "$f" ] || continue
        kept=$(awk -v ok=" $servers " '$1 ~ /^(server|pool|peer)$/ && !index(ok, " " $2 " ") {
            print "# not an authorized time server (CIS 2.3.3.1): " $0; next } { print }' "$f")
        printf '%s\n' "$kept" > "$f"
    done
    if ! grep -sqE '^[[:space:]]*(server|pool|peer)[[:space:]]' \
            /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf /etc/chrony/sources.d/*.sources; then
        printf 'server %s iburst\n' $servers > /etc/chrony/sources.d/golden-cis.sources
        log "2.3.3.1: no authorized time source was configured; using $servers"
    fi
}

# 2.3.3.2: chronyd drops root for the baseline's user, named once in a drop-in of its own.
cis_2_3_3_2() {
    local f
    for f in /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf; do
        [ -f "$f" ] && sed -i -E '/^[[:space:]]*user[[:space:]]/d' "$f"
    done
    { header; printf 'user %s\n' "$(param 2.3.3.2 user)"; } > /etc/chrony/conf.d/60-golden-cis.conf
}

# 4.3.10, with the values of 4.3.4-4.3.8: the company ruleset, in the file nftables.service (4.3.9)
# loads at every boot. It is only checked here, not loaded: the build must not depend on it.
cis_4_3_10() {
    local out=/etc/nftables.conf table hook id host v4="" v6="" any=""
    table=$(param 4.3.4 table)
    [ -n "$table" ] || { log "error: 4.3.10 needs the company table (4.3.4 table)"; exit 1; }
    # NTP leaves only for the authorized time servers (2.3.3.1), by address when they are addresses.
    for host in $(param 2.3.3.1 servers); do
        case $host in
            *:*) v6="$v6${v6:+, }$host" ;;
            *[!0-9.]*) any=1 ;;
            *) v4="$v4${v4:+, }$host" ;;
        esac
    done
    {
        echo '#!/usr/sbin/nft -f'
        header
        printf 'flush ruleset\n\ntable %s {\n' "$table"
        for hook in $(param 4.3.5 hooks); do
            printf '\tchain %s {\n\t\ttype filter hook %s priority filter; policy %s;\n' \
                "$hook" "$hook" "$(param 4.3.8 "$hook" | grep . || echo accept)"
            # Rule lists arrive as one line (items joined by spaces); every rule ends with its verdict.
            for id in 4.3.6 4.3.7; do param "$id" "$hook"; done | awk '{
                r = ""
                for (i = 1; i <= NF; i++) {
                    r = r (r == "" ? "" : " ") $i
                    if ($i ~ /^(accept|drop|reject)$/) { print "\t\t" r; r = "" }
                } }'
            if [ "$hook" = output ]; then
                [ -z "$v4" ] || printf '\t\tip daddr { %s } udp dport 123 accept\n' "$v4"
                [ -z "$v6" ] || printf '\t\tip6 daddr { %s } udp dport 123 accept\n' "$v6"
                [ -z "$any" ] || printf '\t\tudp dport 123 accept\n'
            fi
            printf '\t}\n'
        done
        printf '}\n'
    } > "$out"
    chmod 0644 "$out"
    nft -c -f "$out"
    for id in 4.3.4 4.3.5 4.3.6 4.3.7 4.3.8; do       # their values are applied by this file
        awk -F'\t' -v i="$id" '$1 == i && $2 == "params" {f = 1} END {exit !f}' "$PLAN" && APPLIED[$id]=1
    done
    log "4.3.10: $out written and checked; nftables.service loads it at boot"
}

# 5.1.4: sshd admits the login group only (AllowGroups comes from the sshd values); the group
# must exist for accounts to be put in it.
cis_5_1_4() {
    local group
    group=$(param 5.1.4 group)
    getent group "$group" >/dev/null || groupadd --system "$group"
}

# 5.2.2, 5.2.3, 5.2.6: sudo Defaults, in a drop-in of their own read after /etc/sudoers.
# sudoers_default SEP KEY VALUE: one Defaults line in the image's sudoers drop-in, checked by visudo.
sudoers_default() {
    local f=/etc/sudoers.d/60-golden-cis
    [ -s "$f" ] || header > "$f"
    set_kv "$f" "$1" "$2" "$3"
    chmod 0440 "$f"
    visudo -cqf "$f"
}

cis_5_2_2() {
    sudoers_default "" "Defaults use_pty" @present
}

cis_5_2_3() {
    sudoers_default "=" "Defaults logfile" "\"$(param 5.2.3 logfile)\""
}

cis_5_2_6() {
    sudoers_default "=" "Defaults timestamp_timeout" "$(param 5.2.6 timestamp_timeout)"
}

# 5.2.4: no sudo rule waives the password. cloud-init's per-boot file, which holds the pipeline's
# ephemeral accounts (the build's own is removed by cleanup.sh's finaliser), is left alone.
cis_5_2_4() {
    local f
    for f in /etc/sudoers /etc/sudoers.d/*; do
        [ -f "$f" ] && [ "$f" != /etc/sudoers.d/90-cloud-init-users ] || continue
        grep -qE '^[^#]*NOPASSWD' "$f" || continue
        sed -i -E '/^[[:space:]]*#/! s/NOPASSWD[[:space:]]*://g' "$f"
        log "5.2.4: removed NOPASSWD from $f"
    done
    visudo -cq
}

# 5.2.5: no Defaults turns authentication off; such a line is commented out whole.
cis_5_2_5() {
    local f
    for f in /etc/sudoers /etc/sudoers.d/*; do
        [ -f "$f" ] && grep -qE '^[[:space:]]*Defaults.*!authenticate' "$f" || continue
        sed -i -E 's/^[[:space:]]*Defaults.*!authenticate.*/# turned off by CIS 5.2.5: &/' "$f"
        log "5.2.5: commented out !authenticate in $f"
    done
    visudo -cq
}

# 5.2.7: su asks pam_wheel for membership of an empty group, after pam_rootok so root keeps su.
cis_5_2_7() {
    local group
    group=$(param 5.2.7 group)
    getent group "$group" >/dev/null || groupadd --system "$group"
    gpasswd -M '' "$group"
    sed -i -E '/^[[:space:]]*auth[[:space:]].*pam_wheel\.so/d' /etc/pam.d/su
    sed -i -E "/^[[:space:]]*auth[[:space:]]+sufficient[[:space:]]+pam_rootok\.so/a \\
auth       required   pam_wheel.so use_uid group=$group" /etc/pam.d/su
    grep -q "pam_wheel.so use_uid group=$group" /etc/pam.d/su || {
        log "error: 5.2.7 found no pam_rootok line in /etc/pam.d/su to put pam_wheel after"; exit 1; }
}

# ------------------------------------------------------------ CIS 5.3 (PAM), 5.4 (accounts), 7 (files, users, groups)

apply_pam() {
    local dir=/usr/share/pam-configs id kind file type module args present key mode
    local profile priority section control kind_of distro
    local -a words replaced=() disable=()
    local -A line_args=() stack=() text=() prio=()
    [ -n "$(rows pam)" ] || return 0
    while IFS=$'\t' read -r id kind file type module args present; do
        APPLIED[$id]=1
        [ "$present" = present ] || continue   # a module that must be absent is in no profile of ours
        [ "$args" = - ] && args=""
        mode=""
        case " $args " in *" preauth "*) mode=preauth ;; *" authfail "*) mode=authfail ;; esac
        key="$type $module $mode"
        line_args[$key]="${line_args[$key]-} $args"
        stack[$key]=$file
    done < <(rows pam)

    rm -f "$dir"/golden-*
    while IFS='|' read -r profile priority section control module mode; do
        key="${section,,} $module $mode"
        [ -n "${line_args[$key]+set}" ] || continue
        read -ra words <<< "${line_args[$key]}"
        args=$(printf '%s\n' "${words[@]}" | awk 'NF && !seen[$0]++' | sed 's/^/ /' | tr -d '\n')
        kind_of=Primary
        [ "$section" = Session ] && kind_of=Additional
        prio[$profile]=$priority
        text[$profile]+=$(printf '%s-Type: %s\n%s:\n\t%s\t%s%s' "$section" "$kind_of" "$section" "$control" "$module" "$args")$'\n'
    done <<'LAYOUT'
golden-faillock-notify|1024|Auth|requisite|pam_faillock.so|preauth
golden-faillock-notify|1024|Account|required|pam_faillock.so|
golden-pwquality|1024|Password|requisite|pam_pwquality.so|
golden-pwhistory|512|Password|requisite|pam_pwhistory.so|
golden-unix|256|Auth|[success=end default=ignore]|pam_unix.so|
golden-unix|256|Account|[success=end new_authtok_reqd=done default=ignore]|pam_unix.so|
golden-unix|256|Session|required|pam_unix.so|
golden-unix|256|Password|[success=end default=ignore]|pam_unix.so|
golden-faillock|0|Auth|[default=die]|pam_faillock.so|authfail
LAYOUT
    # pwhistory (512) sits after pwquality (1024), which asks for the new password it checks
    # (use_authtok), and before pam_unix (256), which stores it; pam_faillock's authfail (0) is
    # reached only when pam_unix fails.
    [ ${#text[@]} -gt 0 ] || return 0
    for profile in "${!text[@]}"; do
        printf 'Name: %s, from the golden baseline (hardening-cis.sh %s)\nDefault: yes\nPriority: %s\n%s' \
            "$profile" "$HARDENING_VERSION" "${prio[$profile]}" "${text[$profile]}" > "$dir/$profile"
        distro=${profile#golden-}
        [ -f "$dir/$distro" ] && replaced+=("$distro")
    done
    # The stacks are the baseline's alone. pam-auth-update carries hand-edited module options over
    # (it diffs common-* against its own copy in /var/lib/pam); without that copy, --force rebuilds
    # them from the profiles. --disable, not --remove: a disabled profile stays off when a package
    # upgrade reruns pam-auth-update, a removed one would count as new and come back.
    rm -f /var/lib/pam/auth /var/lib/pam/account /var/lib/pam/password /var/lib/pam/session \
          /var/lib/pam/session-noninteractive
    [ ${#replaced[@]} -eq 0 ] || disable=(--disable "${replaced[@]}")
    pam-auth-update --force --enable "${!text[@]}" "${disable[@]}"
    for key in "${!line_args[@]}"; do
        read -r type module mode <<< "$key"
        if ! grep -Eq "^[^#]*[[:space:]]$module([[:space:]]|\$)" "/etc/pam.d/${stack[$key]}"; then
            log "error: pam-auth-update left $module out of /etc/pam.d/${stack[$key]}"
            exit 1
        fi
    done
}

# cis_chage_password_accounts ID KEY OPTION: give every account that has a password (a crypt hash
# in /etc/shadow) the value the baseline sets for new accounts, e.g. PASS_MAX_DAYS via --maxdays.
cis_chage_password_accounts() {
    local value user
    value=$(awk -F'\t' -v i="$1" -v k="$2" '$1 == i && $2 == "config" && $4 == k {print $5; exit}' "$PLAN")
    [ -n "$value" ] || return 0
    awk -F: '$2 ~ /^\$/ {print $1}' /etc/shadow | while read -r user; do
        chage "$3" "$value" "$user"
    done
}

cis_5_4_1_1() { cis_chage_password_accounts 5.4.1.1 PASS_MAX_DAYS --maxdays; }
cis_5_4_1_3() { cis_chage_password_accounts 5.4.1.3 PASS_WARN_AGE --warndays; }
cis_5_4_1_5() { cis_chage_password_accounts 5.4.1.5 INACTIVE --inactive; }

# A password changed "in the future" would postpone its expiry: date it today.
cis_5_4_1_6() {
    local today user
    today=$(( $(date +%s) / 86400 ))
    awk -F: -v t="$today" '$3 ~ /^[0-9]+$/ && $3 > t {print $1}' /etc/shadow | while read -r user; do
        chage --lastday "$(date +%F)" "$user"
    done
}

# cis_accounts: every account as `name uid gid home login|nologin`; login means a shell listed in
# /etc/shells that is not nologin (CIS's "valid login shell").
cis_accounts() {
    awk -F: 'NR == FNR { if ($0 ~ /^\// && $0 !~ /\/nologin$/) shells[$0] = 1; next }
             { print $1, $3, $4, $6, (($7 in shells) ? "login" : "nologin") }' /etc/shells /etc/passwd
}

# Root without any password (not even a locked one) is locked.
cis_5_4_2_4() {
    if [ -z "$(awk -F: '$1 == "root" {print $2}' /etc/shadow)" ]; then
        usermod --lock root
    fi
}

cis_5_4_2_6() { set_kv /root/.bashrc " " umask "$(param 5.4.2.6 umask)"; }

# System accounts (below UID_MIN, or nobody) get nologin; root and the shutdown helpers keep theirs.
cis_5_4_2_7() {
    local uid_min name uid gid home shell
    uid_min=$(awk '$1 == "UID_MIN" {print $2}' /etc/login.defs)
    cis_accounts | while read -r name uid gid home shell; do
        case $name in root|sync|shutdown|halt|nfsnobody) continue ;; esac
        if [ "$shell" = login ] && { [ "$uid" -lt "${uid_min:-1000}" ] || [ "$uid" -eq 65534 ]; }; then
            usermod --shell /usr/sbin/nologin "$name"
        fi
    done
}

cis_5_4_2_8() {
    local name uid gid home shell
    cis_accounts | while read -r name uid gid home shell; do
        [ "$shell" = nologin ] && [ "$name" != root ] || continue
        case $(awk -F: -v u="$name" '$1 == u {print $2}' /etc/shadow) in
            '!'*|'*'*) ;;
            *) usermod --lock "$name" ;;
        esac
    done
}

cis_5_4_3_1() { sed -i '\#/nologin$#d' /etc/shells; }

# Read-only, so a user cannot lift it; the guard skips a second sourcing, where the assignment to a
# read-only variable would be an error.
cis_5_4_3_2() {
    { header; cat <<EOF
if (unset TMOUT) 2>/dev/null; then
    TMOUT=$(param 5.4.3.2 tmout)
    readonly TMOUT
    export TMOUT
fi
EOF
    } > /etc/profile.d/60-golden-cis-tmout.sh
    chmod 0644 /etc/profile.d/60-golden-cis-tmout.sh
}

# Login shells read /etc/profile.d; login.defs UMASK is what useradd gives new home directories.
cis_5_4_3_3() {
    local umask
    umask=$(param 5.4.3.3 umask)
    { header; printf 'umask %s\n' "$umask"; } > /etc/profile.d/60-golden-cis-umask.sh
    chmod 0644 /etc/profile.d/60-golden-cis-umask.sh
    set_kv /etc/login.defs $'\t' UMASK "$umask"
}

# World-writable files lose o+w; world-writable directories get the sticky bit (CIS 7.1.11).
cis_7_1_11() {
    local mount
    findmnt -n -l -o TARGET -t ext2,ext3,ext4,xfs,btrfs | while read -r mount; do
        find "$mount" -xdev -type f -perm -0002 -exec chmod o-w {} +
        find "$mount" -xdev -type d -perm -0002 ! -perm -1000 -exec chmod +t {} +
    done
}

# Files of an account or group that no longer exists go to root, so that no future account
# with a reused id inherits them.
cis_7_1_12() {
    local mount
    findmnt -n -l -o TARGET -t ext2,ext3,ext4,xfs,btrfs | while read -r mount; do
        find "$mount" -xdev -nouser -exec chown root {} +
        find "$mount" -xdev -nogroup -exec chgrp root {} +
    done
}

cis_7_2_1() { pwconv; }

cis_7_2_2() {
    local name
    awk -F: '$2 == "" {print $1}' /etc/shadow | while read -r name; do
        usermod --lock "$name"
    done
}

# Group shadow reads every password hash: it keeps no members. (An account whose primary group is
# shadow needs a decision about its own group; the check reports it.)
cis_7_2_4() {
    if getent group shadow >/dev/null; then
        gpasswd --members "" shadow
    fi
}

cis_7_2_9() {
    local name uid gid home shell
    cis_accounts | while read -r name uid gid home shell; do
        [ "$shell" = login ] && [ -d "$home" ] && [ "$home" != / ] || continue
        chown "$name" "$home"
        chmod g-w,o-rwx "$home"
    done
}

# Dot files: .forward and .rhosts go, history and .netrc are private, the rest at most 0644, all
# owned by the user and their primary group.
cis_7_2_10() {
    local name uid gid home shell file
    cis_accounts | while read -r name uid gid home shell; do
        [ "$shell" = login ] && [ -d "$home" ] && [ "$home" != / ] || continue
        find "$home" -maxdepth 1 -type f -name '.*' | while read -r file; do
            case ${file##*/} in
                .forward|.rhosts) rm -f "$file"; continue ;;
                .netrc|.bash_history) chmod u-x,go-rwx "$file" ;;
                *) chmod u-x,go-wx "$file" ;;
            esac
            chown "$name:$gid" "$file"
        done
    done
}

# ------------------------------------------------------------ CIS 6 (logging, auditing, integrity)

cis_6_1_2_4() {
    mkdir -p /var/log/journal
    systemd-tmpfiles --create --prefix /var/log/journal
}

# 6.1.3.7: rsyslog receives nothing from the network: lines loading or starting a network input
# are commented out (one-line statements, as Debian writes them).
cis_6_1_3_7() {
    local f
    for f in /etc/rsyslog.conf /etc/rsyslog.d/*.conf; do
        [ -f "$f" ] || continue
        sed -i -E '/^[[:space:]]*#/! { /\b(imtcp|imudp|imrelp)\b|\$(InputTCPServerRun|UDPServerRun|InputRELPServerRun)\b/I s/^/#CIS 6.1.3.7# / }' "$f"
    done
}

# 6.1.4.1: every file under /var/log within its class (params `globs:mode:owners:groups`, first
# name match wins): mode bits beyond the class are removed, a wrong owner or group becomes the
# class's first. Files created later start out that way too: logrotate's `create 0644` becomes
# 0640, and cloud-init's log (created at first boot under umask 022) is created by tmpfiles first.
cis_6_1_4_1() {
    local -a classes globs
    local path name entry pattern mode owners groups glob current
    read -r -a classes <<< "$(param 6.1.4.1 classes)"
    while IFS= read -r -d '' path; do
        name=${path##*/}
        for entry in "${classes[@]}"; do
            IFS=: read -r pattern mode owners groups <<< "$entry"
            IFS=, read -r -a globs <<< "$pattern"
            for glob in "${globs[@]}"; do
                # shellcheck disable=SC2053  # $glob is a pattern
                [[ $name == $glob ]] || continue
                current=$(stat -L -c %a "$path")
                chmod "$(printf '%o' $(( 8#$current & 8#$mode )))" "$path"
                [[ "|$owners|" == *"|$(stat -L -c %U "$path")|"* ]] || chown "${owners%%|*}" "$path"
                [[ "|$groups|" == *"|$(stat -L -c %G "$path")|"* ]] || chgrp "${groups%%|*}" "$path"
                continue 3
            done
        done
        log "warning: $path is in no log file class"
    done < <(find -L /var/log -type f -print0)
    sed -i -E 's/^([[:space:]]*create[[:space:]]+)0?644([[:space:]]|$)/\10640\2/' /etc/logrotate.d/*
    if [ -d /etc/cloud ]; then
        { header; printf 'f /var/log/cloud-init.log 0640 root adm -\n'; } > /etc/tmpfiles.d/60-golden-cis-logs.conf
    fi
}

# 6.2.3.6: an execution rule (params `rule`, {path} = the program) for every setuid and setgid
# program on the local filesystems, in a file of its own rewritten whole. Programs a later build
# step adds are caught by the check at test time.
cis_6_2_3_6() {
    local out=/etc/audit/rules.d/50-golden-privileged.rules rule mnt program
    rule=$(param 6.2.3.6 rule)
    mkdir -p /etc/audit/rules.d
    {
        header
        findmnt -n -l -o TARGET -t ext2,ext3,ext4,xfs,btrfs | while read -r mnt; do
            find "$mnt" -xdev -type f \( -perm -4000 -o -perm -2000 \) -print 2>/dev/null
        done | sort -u | while read -r program; do
            printf '%s\n' "${rule//'{path}'/$program}"
        done
    } > "$out"
    chmod 0640 "$out"
}

# 6.2.3.20: the audit rules are locked until reboot. augenrules keeps only the last -e it reads,
# in file name order, so this file sorts last. Loaded at the image's boot, not in the build VM.
cis_6_2_3_20() {
    local out=/etc/audit/rules.d/99-golden-immutable.rules
    mkdir -p /etc/audit/rules.d
    { header; printf -- '-e %s\n' "$(param 6.2.3.20 enabled)"; } > "$out"
    chmod 0640 "$out"
}

# 6.3.1: AIDE's database describes the instance, built once, 15 minutes after its first boot and at
# idle priority: `aideinit` takes minutes under emulation (10 measured on a TCG candidate), too
# long for the build, and a build-time database would report every first-boot change.
cis_6_3_1() {
    local timer
    timer=$(param 6.3.1 init_timer)
    { header; cat <<'UNIT'; } > "/etc/systemd/system/${timer%.timer}.service"
[Unit]
Description=Build the AIDE database once (CIS 6.3.1)
ConditionPathExists=!/var/lib/aide/aide.db
Before=dailyaidecheck.service

[Service]
Type=oneshot
Nice=19
IOSchedulingClass=idle
ExecStart=/usr/sbin/aideinit --yes --force
UNIT
    { header; cat <<'UNIT'; } > "/etc/systemd/system/$timer"
[Unit]
Description=Build the AIDE database after the first boot has settled (CIS 6.3.1)

[Timer]
OnBootSec=15min

[Install]
WantedBy=timers.target
UNIT
    systemctl enable "$timer"
}

# 6.3.3: AIDE checks each audit tool with the baseline's attributes (params tools, attributes).
cis_6_3_3() {
    local out=/etc/aide/aide.conf.d/70_golden_cis_audit_tools tool attributes
    attributes=$(param 6.3.3 attributes)
    {
        header
        for tool in $(param 6.3.3 tools); do
            printf '%s %s\n' "$tool" "$attributes"
        done
    } > "$out"
    chmod 0644 "$out"
}

log "role $GOLDEN_ROLE, level $GOLDEN_LEVEL, $(cut -f1 "$PLAN" | sort -u | wc -l) controls in the plan"
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
[ -z "$GRUB_STALE" ] || refresh_grub
apply_files         # last: earlier steps (update-grub, new files) may reset permissions
write_record
log "applied ${#APPLIED[@]} controls; record in /etc/golden/hardening.json"
