# shellcheck shell=bash
# shellcheck disable=SC2154  # id, key and value are plan columns, bound by each()
apply_sshd() {
    local out=$GOLDEN_FILE_SSHD
    mkdir -p "$(dirname "$out")"
    header > "$out"
    each sshd sshd_row
    chmod 0600 "$out"
    sshd -t   # a broken sshd configuration fails the build here, not at first boot
}

sshd_row() {
    printf '%s %s\n' "$key" "$value" >> "$out"
    applied "$id"
}
