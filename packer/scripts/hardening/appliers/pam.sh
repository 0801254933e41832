# shellcheck shell=bash
# shellcheck disable=SC2154  # the variables of the *_row functions are plan columns, bound by each()
# pam: the baseline's rules as pam-auth-update profiles. Which profile, priority and control flag
# a module's line gets is the plan's pam_profile table (pipeline/image/hardening.py PAM_PROFILES):
# pwhistory (512) sits after pwquality (1024), which asks for the new password it checks
# (use_authtok), and before pam_unix (256), which stores it; pam_faillock's authfail (0) is
# reached only when pam_unix fails.
apply_pam() {
    local dir=/usr/share/pam-configs key profile distro type module mode
    local -a replaced=() disable=()
    local -A line_args=() stack=() text=() prio=()
    [ -n "$(rows pam)" ] || return 0
    each pam pam_row
    rm -f "$dir"/golden-*
    each pam_profile pam_profile_row
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

pam_row() {
    local mode=""
    applied "$id"
    [ "$present" = present ] || return 0   # a module that must be absent is in no profile of ours
    case " $args " in *" preauth "*) mode=preauth ;; *" authfail "*) mode=authfail ;; esac
    line_args["$type $module $mode"]="${line_args["$type $module $mode"]-} $args"
    stack["$type $module $mode"]=$file
}

pam_profile_row() {
    local words line kind_of=Primary key="${section,,} $module $mode"
    [ -n "${line_args[$key]+set}" ] || return 0
    read -ra words <<< "${line_args[$key]}"
    line=$(printf '%s\n' "${words[@]}" | awk 'NF && !seen[$0]++' | sed 's/^/ /' | tr -d '\n')
    [ "$section" = Session ] && kind_of=Additional
    prio[$profile]=$priority
    text[$profile]+=$(printf '%s-Type: %s\n%s:\n\t%s\t%s%s' "$section" "$kind_of" "$section" "$control" "$module" "$line")$'\n'
}
