# shellcheck shell=bash
# CIS 1, initial setup: AppArmor, the bootloader, process hardening, banners, GDM.
# Functions named after the CIS id run when the plan lists the id (appliers/control.sh).

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
        "$user" "$user" "$hash"; } > "$GOLDEN_FILE_GRUB_PASSWORD"
    chmod 0755 "$GOLDEN_FILE_GRUB_PASSWORD"
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
