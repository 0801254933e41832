# shellcheck shell=bash
# CIS 7, system maintenance: file permissions, users and groups.
# Functions named after the CIS id run when the plan lists the id (appliers/control.sh).

# World-writable files lose o+w; world-writable directories get the sticky bit (CIS 7.1.11).
cis_7_1_11() {
    walk_local_files
    scanned F | xargs -0 -r chmod o-w
    scanned D | xargs -0 -r chmod +t
}

# Files of an account or group that no longer exists go to root, so that no future account
# with a reused id inherits them.
cis_7_1_12() {
    walk_local_files
    scanned U | xargs -0 -r chown root
    scanned G | xargs -0 -r chgrp root
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
    local name home shell
    accounts | while read -r name _ _ home shell; do
        [ "$shell" = login ] && [ -d "$home" ] && [ "$home" != / ] || continue
        chown "$name" "$home"
        chmod g-w,o-rwx "$home"
    done
}

# Dot files: .forward and .rhosts go, history and .netrc are private, the rest at most 0644, all
# owned by the user and their primary group.
cis_7_2_10() {
    local name gid home shell file
    accounts | while read -r name _ gid home shell; do
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
