# shellcheck shell=bash
# shellcheck disable=SC2154  # id, key and value are plan columns, bound by each()
apply_sysctl() {
    local out=/etc/sysctl.d/60-golden-cis.conf
    header > "$out"
    each sysctl sysctl_row
}

sysctl_row() {
    printf '%s = %s\n' "$key" "$value" >> "$out"
    sysctl -q -w "$key=$value" || log "warning: $key not settable at run time"
    applied "$id"
}
