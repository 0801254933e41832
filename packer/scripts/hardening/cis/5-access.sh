# shellcheck shell=bash
# CIS 5, access control: sshd, sudo, su, password ageing, accounts and their environment.
# Functions named after the CIS id run when the plan lists the id (appliers/control.sh).

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

# cis_chage_password_accounts ID KEY OPTION: give every account that has a password (a crypt hash
# in /etc/shadow) the value the baseline sets for new accounts, e.g. PASS_MAX_DAYS via --maxdays.
cis_chage_password_accounts() {
    local want_id=$1 want_key=$2 found_value="" user
    each config chage_value_row
    [ -n "$found_value" ] || return 0
    awk -F: '$2 ~ /^\$/ {print $1}' /etc/shadow | while read -r user; do
        chage "$3" "$found_value" "$user"
    done
}

# shellcheck disable=SC2154  # id, key and value (the row's) are plan columns, bound by each()
chage_value_row() {
    if [ "$id" = "$want_id" ] && [ "$key" = "$want_key" ]; then found_value=$value; fi
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

# Root without any password (not even a locked one) is locked.
cis_5_4_2_4() {
    if [ -z "$(awk -F: '$1 == "root" {print $2}' /etc/shadow)" ]; then
        usermod --lock root
    fi
}

cis_5_4_2_6() { set_kv /root/.bashrc " " umask "$(param 5.4.2.6 umask)"; }

# System accounts (below UID_MIN, or nobody) get nologin; root and the shutdown helpers keep theirs.
cis_5_4_2_7() {
    local uid_min name uid shell
    uid_min=$(awk '$1 == "UID_MIN" {print $2}' /etc/login.defs)
    accounts | while read -r name uid _ _ shell; do
        case $name in root|sync|shutdown|halt|nfsnobody) continue ;; esac
        if [ "$shell" = login ] && { [ "$uid" -lt "${uid_min:-1000}" ] || [ "$uid" -eq 65534 ]; }; then
            usermod --shell /usr/sbin/nologin "$name"
        fi
    done
}

cis_5_4_2_8() {
    local name shell
    accounts | while read -r name _ _ _ shell; do
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
