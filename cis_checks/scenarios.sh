# Helpers for violation scenarios: sourced before each check's `violate` script, which runs as
# root on a booted candidate (an ephemeral overlay) with GOLDEN_SCENARIO set to the CIS id.
# Each helper breaks one thing the way a real misconfiguration would.

# given KEY VALUE: fails unless VALUE is there (a `$(violating KEY)` that found none is empty).
given() {
    [ -n "$2" ] || { echo "CIS $GOLDEN_SCENARIO: no value for $1" >&2; return 1; }
}

# violating KEY: a value of KEY that the control's baseline entry rejects (its bound plus or minus
# one, the other of yes/no), as pipeline/checks/scenarios.py derived it into GOLDEN_VIOLATING.
violating() {
    printf '%s' "${GOLDEN_VIOLATING:-}" | awk -v k="$1" '$1 == k {print $2; found = 1} END {exit !found}' \
        || { echo "CIS $GOLDEN_SCENARIO: the baseline gives no violating value of $1" >&2; return 1; }
}

# sshd_option KEYWORD VALUE: a drop-in whose value wins over the hardening's own (one file per
# scenario; a scenario may set several keywords). sshd keeps the first value of a keyword, so the
# drop-in sorts before 50-golden-cis.conf; of MaxStartups it keeps the last, so that one sorts after.
# Mode 0600, as CIS 5.1.1 asks of drop-ins, so it breaks only the keyword's control.
sshd_option() {
    given "$1" "$2"
    case $1 in [Mm]ax[Ss]tartups) order=99 ;; *) order=01 ;; esac
    f=/etc/ssh/sshd_config.d/${order}-violation-${GOLDEN_SCENARIO}.conf
    [ -e "$f" ] || install -m 0600 /dev/null "$f"
    printf '%s %s\n' "$1" "$2" >> "$f"
}

# sysctl_violate KEY VALUE: wrong now and wrong after the next boot.
sysctl_violate() {
    sysctl -q -w "$1=$2"
    printf '%s = %s\n' "$1" "$2" > "/etc/sysctl.d/99-violation-${GOLDEN_SCENARIO}.conf"
}

# fake_package NAME [UNIT]: a real dpkg package of that name is installed; with UNIT, it ships
# that systemd service, enabled and running. Packages are built now and installed together by
# scenarios_finish (one dpkg run instead of one per scenario: each costs seconds under emulation).
fake_package() {
    name=$1 unit=${2:-}
    dir=$(mktemp -d)
    mkdir -p "$dir/DEBIAN" /run/golden-fake-debs
    # The epoch puts the fake above every real version, so no Breaks/Conflicts of an installed
    # library can keep it from being configured (only "installed" counts as installed).
    printf 'Package: %s\nVersion: 99:0-violation\nArchitecture: all\nMaintainer: golden tests <root@localhost>\nDescription: violation scenario %s\n' \
        "$name" "$GOLDEN_SCENARIO" > "$dir/DEBIAN/control"
    if [ -n "$unit" ]; then
        mkdir -p "$dir/lib/systemd/system"
        printf '[Unit]\nDescription=violation scenario\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n' \
            > "$dir/lib/systemd/system/$unit"
    fi
    printf '%s %s %s\n' "$GOLDEN_SCENARIO" "$name" "$unit" >> /run/golden-fake-packages
    dpkg-deb -Znone -b "$dir" "/run/golden-fake-debs/$name.deb" >/dev/null
    rm -rf "$dir"
}

# module_available NAME: the module can be loaded: the hardening's modprobe rules for it are gone,
# and if this kernel has no such module, a loadable file of that name is provided.
module_available() {
    name=$1 norm=$(echo "$1" | tr - _)
    for f in /etc/modprobe.d/*.conf; do
        [ -f "$f" ] && sed -i -E "/^(install|blacklist)[[:space:]]+($1|$norm)([[:space:]]|\$)/d" "$f"
    done
    if ! modinfo -n "$name" >/dev/null 2>&1; then
        kdir=/lib/modules/$(uname -r)
        donor=$(find "$kdir/kernel" -name '*.ko*' | head -n 1)
        mkdir -p "$kdir/kernel/golden-violation"
        cp "$donor" "$kdir/kernel/golden-violation/$name.ko${donor##*.ko}"
        touch /run/golden-scenario-depmod
    fi
}

# login_defs_set KEY VALUE
login_defs_set() {
    given "$1" "$2"
    if grep -qE "^[[:space:]]*$1[[:space:]]" /etc/login.defs; then
        sed -i -E "s/^[[:space:]]*$1[[:space:]].*/$1 $2/" /etc/login.defs
    else
        printf '%s %s\n' "$1" "$2" >> /etc/login.defs
    fi
}

# Scenario helpers for sections 1.1.2 (mounts), 1.3.1 (AppArmor, kernel command line) and 1.7 (GDM).

# mount_without TARGET OPTION [KEEP...]: TARGET is mounted without OPTION from now on. A mount
# point that is not a separate mount first becomes one, bound onto itself with the KEEP options
# (as an administrator's bind mount would), so that OPTION is the only one missing.
mount_without() {
    target=$1 option=$2
    shift 2
    if ! mountpoint -q "$target"; then
        keep=$(echo "$*" | tr ' ' ,)
        mount --bind ${keep:+-o "$keep"} "$target" "$target"
    fi
    # Options from the current mount only: with fstab's, remount would put back what it lists.
    mount --options-source=mtab -o "remount,bind,${option#no}" "$target"
}

# mount_not_at_boot TARGET: TARGET stays mounted now, but nothing mounts it at the next boot:
# its /etc/fstab line is commented out and its systemd mount unit disabled.
mount_not_at_boot() {
    target=$1
    unit=$(systemd-escape -p --suffix=mount "$target")
    awk -v t="$target" '$2 == t && $1 !~ /^#/ {$0 = "#" $0} {print}' /etc/fstab > /etc/fstab.violation
    cat /etc/fstab.violation > /etc/fstab
    rm -f /etc/fstab.violation
    systemctl disable "$unit" >/dev/null 2>&1 || true
    systemctl daemon-reload
}

# mount_root_directory_on TARGET [OPTION...]: a directory of the root filesystem is bind-mounted
# over TARGET (with the OPTIONs, so only separateness is lost): TARGET's data now lives on /.
mount_root_directory_on() {
    target=$1
    shift
    dir=/var/lib/golden-violation$(echo "$target" | tr / -)
    mkdir -p "$dir"
    opts=$(echo "$*" | tr ' ' ,)
    mount --bind ${opts:+-o "$opts"} "$dir" "$target"
}

# gdm_setting DB GROUP KEY VALUE: GDM is installed and a dconf keyfile that sorts after the
# hardening's own sets KEY in DB (gdm: the login screen, local: user sessions).
gdm_setting() {
    dpkg-query -W -f '${db:Status-Status}' gdm3 2>/dev/null | grep -qx installed || fake_package gdm3
    mkdir -p "/etc/dconf/db/$1.d"
    printf '[%s]\n%s=%s\n' "$2" "$3" "$4" > "/etc/dconf/db/$1.d/99-violation-$GOLDEN_SCENARIO"
}

# gdm_unlock DB KEY: GDM is installed and KEY (e.g. /org/gnome/desktop/session/idle-delay) is no
# longer locked in DB: users can override it.
gdm_unlock() {
    dpkg-query -W -f '${db:Status-Status}' gdm3 2>/dev/null | grep -qx installed || fake_package gdm3
    for f in "/etc/dconf/db/$1.d/locks/"*; do
        [ -f "$f" ] && sed -i "\\|^$2\$|d" "$f"
    done
    true
}

# apparmor_unconfined_process: a daemon runs unconfined although a profile for it is loaded
# (it was started before its profile was loaded, and was never restarted).
apparmor_unconfined_process() {
    bin=/usr/local/sbin/golden-violation-daemon
    cp /bin/sleep "$bin"
    systemd-run --unit golden-violation-daemon "$bin" infinity >/dev/null
    printf 'abi <abi/3.0>,\n%s {\n  %s mr,\n}\n' "$bin" "$bin" > /etc/apparmor.d/usr.local.sbin.golden-violation-daemon
    apparmor_parser -r /etc/apparmor.d/usr.local.sbin.golden-violation-daemon
}

# grub_cmdline_add PARAM...: the kernel command line of the next boot gets PARAMs (a later
# setting of the same parameter wins), through /etc/default/grub.d and update-grub.
grub_cmdline_add() {
    printf 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX %s"\n' "$*" > "/etc/default/grub.d/99-violation-$GOLDEN_SCENARIO.cfg"
    update-grub >/dev/null 2>&1
}

# Scenario helpers of the "services" sections (2.1, 2.3, 4, 5.1, 5.2); POSIX sh functions.

# package_unconfigured NAME: NAME is left unpacked but not configured (dpkg status iU), as an
# interrupted upgrade leaves it: the same files stay in place and keep working.
package_unconfigured() {
    name=$1 dir=$(mktemp -d)
    mkdir "$dir/DEBIAN"
    dpkg-query -W -f 'Package: ${Package}\nVersion: ${Version}\nArchitecture: ${Architecture}\n' "$name" \
        > "$dir/DEBIAN/control"
    printf 'Maintainer: golden tests <root@localhost>\nDescription: violation scenario %s\n' "$GOLDEN_SCENARIO" \
        >> "$dir/DEBIAN/control"
    conffiles=$(dpkg-query -W -f '${Conffiles}\n' "$name" | awk '{print $1}')
    dpkg-query -L "$name" | while read -r f; do
        if [ ! -d "$f" ] && { [ -e "$f" ] || [ -L "$f" ]; } && ! printf '%s\n' "$conffiles" | grep -qxF "$f"; then
            printf '%s\n' "$f"
        fi
    done | tar -cf - --no-recursion -T - | tar -xf - -C "$dir"
    dpkg-deb -b "$dir" "$dir.deb" >/dev/null
    dpkg --unpack "$dir.deb" >/dev/null
    rm -rf "$dir" "$dir.deb"
}

# sudoers_dropin LINE: a sudoers.d file read after the hardening's own, so its Defaults win.
sudoers_dropin() {
    f=/etc/sudoers.d/99-violation-$(echo "$GOLDEN_SCENARIO" | tr . _)    # sudo skips names with a dot
    printf '%s\n' "$1" > "$f.tmp"
    chmod 0440 "$f.tmp"
    visudo -cqf "$f.tmp"
    mv "$f.tmp" "$f"
}

# mta_listen_everywhere: a mail server answering SMTP on every address (Python's smtpd, as a
# transient service so it outlives the scenario).
mta_listen_everywhere() {
    systemd-run --unit=violation-smtp --quiet python3 -W ignore -m smtpd -n -c DebuggingServer 0.0.0.0:25
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        ss -Htln 'sport = :25' | grep -q . && return 0
        sleep 1
    done
    return 1
}

# nft_chain_at HOOK: "family table chain" of the first base chain hooked at HOOK, now.
nft_chain_at() {
    nft list ruleset | awk -v hook="$1" '$1 == "table" {t = $2 " " $3} $1 == "chain" {c = $2}
        index($0, "hook " hook " ") {print t, c; exit}'
}

# nft_delete_rule HOOK RULE: the rule (as `nft list` prints it) goes from the chain at HOOK, at
# run time only.
nft_delete_rule() {
    rule=$2
    set -- $(nft_chain_at "$1")
    handle=$(nft -a list chain "$1" "$2" "$3" | awk -v r="$rule # handle " 'index($0, r) {print $NF; exit}')
    nft delete rule "$1" "$2" "$3" handle "$handle"
}

# nft_rename_table NAME: the firewall is rebuilt by hand in a table of another name, at run time.
nft_rename_table() {
    name=$1
    set -- $(nft_chain_at input)
    nft list table "$1" "$2" | sed "1s/^table $1 $2 /table $1 $name /" | nft -f -
    nft delete table "$1" "$2"
}

# Scenario helpers of the accounts sections (5.3, 5.4, 7); POSIX sh, sourced after scenarios.sh.

# dpkg_status_version PACKAGE VERSION: dpkg records PACKAGE as installed at VERSION, as on a host
# that missed the update (the files stay; no mirror is needed to "downgrade").
dpkg_status_version() {
    sed -i "/^Package: $1\$/,/^\$/s/^Version: .*/Version: $2/" /var/lib/dpkg/status
}

# pam_line_drop FILE MODULE: hand-edit /etc/pam.d/FILE to lose the lines that call MODULE.
pam_line_drop() {
    mod=$(printf '%s' "$2" | sed 's/\./\\./g')
    sed -i -E "/^[^#]*[[:space:]]$mod([[:space:]]|\$)/d" "/etc/pam.d/$1"
}

# pam_arg_set FILE MODULE ARG: on the lines calling MODULE, ARG (a flag or key=value) replaces the
# argument of that name, or is appended.
pam_arg_set() {
    mod=$(printf '%s' "$2" | sed 's/\./\\./g') key=${3%%=*}
    sed -i -E "/^[^#]*[[:space:]]$mod([[:space:]]|\$)/{s/[[:space:]]$key(=[^[:space:]]*)?([[:space:]]|\$)/\\2/;s/[[:space:]]*\$/ $3/}" \
        "/etc/pam.d/$1"
}

# pam_arg_drop FILE MODULE NAME: the lines calling MODULE lose the argument NAME (flag or key=value).
pam_arg_drop() {
    mod=$(printf '%s' "$2" | sed 's/\./\\./g')
    sed -i -E "/^[^#]*[[:space:]]$mod([[:space:]]|\$)/s/[[:space:]]$3(=[^[:space:]]*)?([[:space:]]|\$)/\\2/" "/etc/pam.d/$1"
}

# faillock_set KEY VALUE: /etc/security/faillock.conf sets KEY to VALUE: the file's settings of KEY
# (the hardening's own among them) are replaced in place, or a line is appended where there is none;
# commented examples (Debian ships only those) stay comments. pam_faillock reads the file unless its
# PAM arguments say otherwise, and the hardening's arguments set no value.
faillock_set() {
    given "$1" "$2"
    f=/etc/security/faillock.conf
    if [ -f "$f" ] && grep -qE "^[[:space:]]*$1[[:space:]]*(=|\$)" "$f"; then
        sed -i -E "s/^[[:space:]]*$1[[:space:]]*(=.*)?\$/$1 = $2/" "$f"
    else
        printf '%s = %s\n' "$1" "$2" >> "$f"
    fi
}

# pwquality_local KEY VALUE: a local pwquality drop-in read after the baseline's.
pwquality_local() {
    given "$1" "$2"
    printf '%s = %s\n' "$1" "$2" > "/etc/security/pwquality.conf.d/99-local-$GOLDEN_SCENARIO.conf"
}

# Scenario helpers for section 6 (logging, auditd, AIDE): draft of helper "logging", to be
# appended to cis_checks/scenarios.sh.

# journald_set KEY VALUE: a journald drop-in that sorts after the hardening's own, so it wins.
journald_set() {
    mkdir -p /etc/systemd/journald.conf.d
    printf '[Journal]\n%s=%s\n' "$1" "$2" > "/etc/systemd/journald.conf.d/99-violation-${GOLDEN_SCENARIO}.conf"
}

# rsyslog_set DIRECTIVE VALUE: an rsyslog drop-in read after the hardening's own.
rsyslog_set() {
    mkdir -p /etc/rsyslog.d
    printf '%s %s\n' "$1" "$2" > "/etc/rsyslog.d/99-violation-${GOLDEN_SCENARIO}.conf"
}

# auditd_conf_set KEY VALUE: the setting auditd reads at its next start.
auditd_conf_set() {
    given "$1" "$2"
    sed -i -E "/^[[:space:]]*$1[[:space:]]*=/d" /etc/audit/auditd.conf
    printf '%s = %s\n' "$1" "$2" >> /etc/audit/auditd.conf
}

# audit_rule_drop TEXT: the audit rules loaded at the next boot lose every rule containing TEXT.
# The loaded rules stay: the hardened image locks them (-e 2) until reboot, as it should.
audit_rule_drop() {
    grep -qF -e "$1" /etc/audit/rules.d/*.rules || { echo "no audit rule contains: $1" >&2; return 1; }
    for f in /etc/audit/rules.d/*.rules; do
        grep -vF -e "$1" "$f" > "$f.violation" || true
        cat "$f.violation" > "$f"    # rewritten in place: mode and owner stay as they were
        rm -f "$f.violation"
    done
}

# kernel_param_set KEY VALUE: every boot entry of grub.cfg gets KEY=VALUE after the hardening's
# parameters (the last one wins). grub.cfg keeps its mode and owner (other controls judge them).
kernel_param_set() {
    given "$1" "$2"
    printf 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX %s=%s"\n' "$1" "$2" \
        > "/etc/default/grub.d/99-violation-${GOLDEN_SCENARIO}.cfg"
    perms=$(stat -c '%a %u:%g' /boot/grub/grub.cfg)
    update-grub >/dev/null 2>&1
    chmod "${perms% *}" /boot/grub/grub.cfg
    chown "${perms#* }" /boot/grub/grub.cfg
}

# Called once after every scenario ran: work several scenarios need is done here, once.
scenarios_finish() {
    if [ -f /run/golden-fake-packages ]; then
        dpkg -i /run/golden-fake-debs/*.deb >/dev/null 2>&1 || true
        systemctl daemon-reload
        # shellcheck disable=SC2046
        systemctl enable --now $(awk 'NF == 3 {print $3}' /run/golden-fake-packages) >/dev/null 2>&1 || true
        # Each fake is verified: a package that is not "installed", or a unit that is not enabled,
        # withdraws its scenario (reported as not applied), so a check that then passes is never
        # mistaken for a check that cannot fail.
        while read -r scenario name unit; do
            state=$(dpkg-query -W -f '${db:Status-Status}' "$name" 2>/dev/null || echo absent)
            if [ "$state" != installed ]; then
                printf '%s failed %s\nfake package %s is %s after dpkg -i\n' "$APPLY_MARK" "$scenario" "$name" "$state"
                continue
            fi
            [ -n "$unit" ] || continue
            [ "$(systemctl is-enabled "$unit" 2>/dev/null)" = enabled ] || systemctl enable --now "$unit" >/dev/null 2>&1 || true
            enabled=$(systemctl is-enabled "$unit" 2>&1 || true)
            if [ "$enabled" != enabled ]; then
                printf '%s failed %s\nfake unit %s is %s\n' "$APPLY_MARK" "$scenario" "$unit" "$enabled"
            fi
        done < /run/golden-fake-packages
        rm -rf /run/golden-fake-debs /run/golden-fake-packages
    fi
    if [ -f /run/golden-scenario-depmod ]; then
        depmod -a
        rm -f /run/golden-scenario-depmod
    fi
}
