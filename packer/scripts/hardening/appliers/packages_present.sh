# shellcheck shell=bash
# shellcheck disable=SC2154  # id and name are plan columns, bound by each()
apply_packages_present() {
    local -a install=()
    each packages_present package_present_row
    if [ ${#install[@]} -gt 0 ]; then
        apt-get -q -y --no-install-recommends install "${install[@]}"
    fi
}

package_present_row() {
    # apt-get costs ~20 s under emulation even when it has nothing to do.
    installed "$name" || install+=("$name")
    applied "$id"
}
