# shellcheck shell=bash
# shellcheck disable=SC2154  # id, target, options and separate are plan columns, bound by each()
# mounts: the options of every control on a target are added at once, targets in plan order.
apply_mounts() {
    local -a targets=()
    local -A opts=()
    local t
    each mounts mount_row
    for t in "${targets[@]}"; do
        mount_options "$t" "${opts[$t]#,}"
    done
}

# A separate partition cannot be made here: without one the control needs an exception.
mount_row() {
    [ -n "${opts[$target]+set}" ] || { targets+=("$target"); opts[$target]=""; }
    if [ -n "$options" ]; then opts[$target]+=",$options"; fi
    if [ "$separate" = separate ] && [ "$target" != /tmp ] && ! findmnt -n "$target" >/dev/null; then
        log "warning: $id: $target is not a separate partition on this image; it needs an exception"
    else
        applied "$id"
    fi
}

# mount_options TARGET OPTIONS: in fstab if the target is there, else /tmp as tmp.mount, else a tmpfs line.
mount_options() {
    local target=$1 wanted=$2 shipped
    if awk -v t="$target" '$1 !~ /^#/ && $2 == t {found = 1} END {exit !found}' /etc/fstab; then
        awk -v t="$target" -v add="$wanted" 'BEGIN {OFS = "\t"}
            $1 !~ /^#/ && $2 == t {n = split(add, a, ","); for (i = 1; i <= n; i++) if (index("," $4 ",", "," a[i] ",") == 0) $4 = $4 "," a[i]}
            {print}' /etc/fstab > /etc/fstab.golden
        cat /etc/fstab.golden > /etc/fstab
        rm -f /etc/fstab.golden
        if findmnt -n "$target" >/dev/null; then mount -o remount "$target"; fi
    elif [ "$target" = /tmp ]; then
        cp /usr/share/systemd/tmp.mount /etc/systemd/system/tmp.mount
        shipped=$(sed -n 's/^Options=//p' /usr/share/systemd/tmp.mount)
        mkdir -p /etc/systemd/system/tmp.mount.d
        { header; printf '[Mount]\nOptions=%s\n' "$(printf '%s,%s' "$shipped" "$wanted" |
            awk -v RS=, 'NF && !seen[$0]++ {printf "%s%s", (n++ ? "," : ""), $0}')"; } \
            > /etc/systemd/system/tmp.mount.d/60-golden-cis.conf
        systemctl enable tmp.mount
    elif [ "$(findmnt -n -f -o FSTYPE "$target")" = tmpfs ]; then
        printf 'tmpfs\t%s\ttmpfs\tdefaults%s\t0\t0\n' "$target" "${wanted:+,$wanted}" >> /etc/fstab
        mount -o "remount${wanted:+,$wanted}" "$target"
    fi
}
