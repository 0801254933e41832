# Helpers for violation scenarios: sourced before each check's `violate` script, which runs as
# root on a booted candidate (an ephemeral overlay) with GOLDEN_SCENARIO set to the CIS id.
# Each helper breaks one thing the way a real misconfiguration would.

# sshd_option KEYWORD VALUE: a drop-in that sorts before the hardening's own, so it wins (one file
# per scenario; a scenario may set several keywords).
sshd_option() {
    printf '%s %s\n' "$1" "$2" >> "/etc/ssh/sshd_config.d/01-violation-${GOLDEN_SCENARIO}.conf"
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
        echo "$unit" >> /run/golden-fake-units
    fi
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
    if grep -qE "^[[:space:]]*$1[[:space:]]" /etc/login.defs; then
        sed -i -E "s/^[[:space:]]*$1[[:space:]].*/$1 $2/" /etc/login.defs
    else
        printf '%s %s\n' "$1" "$2" >> /etc/login.defs
    fi
}

# Called once after every scenario ran: work several scenarios need is done here, once.
scenarios_finish() {
    if [ -d /run/golden-fake-debs ]; then
        dpkg -i /run/golden-fake-debs/*.deb >/dev/null 2>&1 || true
        rm -rf /run/golden-fake-debs
    fi
    if [ -f /run/golden-fake-units ]; then
        systemctl daemon-reload
        # shellcheck disable=SC2046
        systemctl enable --now $(cat /run/golden-fake-units) >/dev/null 2>&1 || true
        rm -f /run/golden-fake-units
    fi
    if [ -f /run/golden-scenario-depmod ]; then
        depmod -a
        rm -f /run/golden-scenario-depmod
    fi
}
