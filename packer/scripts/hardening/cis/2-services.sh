# shellcheck shell=bash
# CIS 2, services: the mail server, time synchronization, cron and at.
# Functions named after the CIS id run when the plan lists the id (appliers/control.sh).

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

# 2.3.3.2: chronyd drops root for the baseline's user, named once, in the drop-in the chrony
# configuration writer owns (pipeline/image/hardening.py CONFIG_WRITERS).
cis_2_3_3_2() {
    local f out=$GOLDEN_FILE_CHRONY
    for f in /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf; do
        [ -f "$f" ] && sed -i -E '/^[[:space:]]*user[[:space:]]/d' "$f"
    done
    [ -s "$out" ] || header > "$out"
    set_kv "$out" " " user "$(param 2.3.3.2 user)"
}

# allow_list ID PATH: a list of the users allowed to use a scheduler (root alone), with the owner
# and mode the baseline's files row of ID gives PATH. Its group is the last the baseline allows:
# root first (apply_files' choice for a file of another group), then the group the program that
# reads the list runs as (crontab and at are setgid).
allow_list() {
    local want_id=$1 want_path=$2 found=""
    each files allow_list_row
    if [ -z "$found" ]; then log "error: $want_id has no files row for $want_path in the plan"; exit 1; fi
}

# shellcheck disable=SC2154  # id, path, owner, groups and mode are plan columns, bound by each()
allow_list_row() {
    [ "$id" = "$want_id" ] && [ "$path" = "$want_path" ] || return 0
    printf 'root\n' > "$path"
    chown "$owner:${groups##*|}" "$path"
    chmod "$mode" "$path"
    found=1
}

# 2.4.1.8: only the users listed in cron.allow (root) may use crontab; cron.deny is then ignored.
cis_2_4_1_8() { allow_list 2.4.1.8 /etc/cron.allow; }

# 2.4.2.1: the same for at, written even without at installed so that installing it later
# does not open it to every user.
cis_2_4_2_1() { allow_list 2.4.2.1 /etc/at.allow; }
