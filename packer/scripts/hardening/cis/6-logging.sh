# shellcheck shell=bash
# CIS 6, logging and auditing: journald, rsyslog, log files, audit rules, AIDE.
# Functions named after the CIS id run when the plan lists the id (appliers/control.sh).

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
    local out=/etc/audit/rules.d/50-golden-privileged.rules rule program
    rule=$(param 6.2.3.6 rule)
    walk_local_files
    mkdir -p /etc/audit/rules.d
    {
        header
        scanned S | tr '\0' '\n' | sort -u | while read -r program; do
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
    local out=$GOLDEN_FILE_AIDE_AUDIT_TOOLS tool attributes
    attributes=$(param 6.3.3 attributes)
    {
        header
        for tool in $(param 6.3.3 tools); do
            printf '%s %s\n' "$tool" "$attributes"
        done
    } > "$out"
    chmod 0644 "$out"
}
