# shellcheck shell=bash
# shellcheck disable=SC2154  # id, key and value are plan columns, bound by each()
apply_kernel_cmdline() {
    local params=""
    each kernel_cmdline kernel_cmdline_row
    [ -n "$params" ] || return 0
    mkdir -p /etc/default/grub.d
    # shellcheck disable=SC2016  # $GRUB_CMDLINE_LINUX is for grub-mkconfig to expand
    { header; printf 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX%s"\n' "$params"; } > /etc/default/grub.d/60-golden-cis.cfg
    grub_stale
}

kernel_cmdline_row() {
    params="$params $key=$value"
    applied "$id"
}
