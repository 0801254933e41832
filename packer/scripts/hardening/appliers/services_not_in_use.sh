# shellcheck shell=bash
# shellcheck disable=SC2154  # id, package and unit are plan columns, bound by each()
apply_services_not_in_use() { each services_not_in_use service_not_in_use_row; }

service_not_in_use_row() {
    applied "$id"
    installed "$package" || return 0
    systemctl stop "$unit" 2>/dev/null || true
    systemctl mask "$unit"
}
