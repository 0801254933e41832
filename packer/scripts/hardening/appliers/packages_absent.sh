# shellcheck shell=bash
# shellcheck disable=SC2154  # id and name are plan columns, bound by each()
apply_packages_absent() {
    local -a purge=()
    each packages_absent package_absent_row
    if [ ${#purge[@]} -gt 0 ]; then
        apt-get -q -y purge "${purge[@]}"
    fi
}

package_absent_row() {
    if installed "$name"; then purge+=("$name"); fi
    applied "$id"
}
