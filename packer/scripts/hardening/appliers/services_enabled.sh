# shellcheck shell=bash
# shellcheck disable=SC2154  # id and unit are plan columns, bound by each()
apply_services_enabled() { each services_enabled service_enabled_row; }

service_enabled_row() {
    applied "$id"
    # Already enabled: leave it (enabling a unit with a SysV script takes 5-15 s under emulation).
    [ "$(systemctl is-enabled "$unit" 2>/dev/null)" = enabled ] && return 0
    systemctl unmask "$unit" >/dev/null 2>&1 || true
    systemctl enable "$unit"
}
