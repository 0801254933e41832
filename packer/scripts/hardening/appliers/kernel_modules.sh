# shellcheck shell=bash
# shellcheck disable=SC2154  # id and name are plan columns, bound by each()
apply_kernel_modules() {
    local out=/etc/modprobe.d/60-golden-cis.conf
    header > "$out"
    each kernel_modules kernel_module_row
}

kernel_module_row() {
    printf 'install %s /bin/false\nblacklist %s\n' "$name" "$name" >> "$out"
    modprobe -r "$name" 2>/dev/null || true
    applied "$id"
}
