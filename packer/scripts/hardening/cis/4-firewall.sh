# shellcheck shell=bash
# CIS 4, host-based firewall: the company nftables ruleset.
# Functions named after the CIS id run when the plan lists the id (appliers/control.sh).

# 4.3.10, with the values of 4.3.4-4.3.8: the company ruleset, in the file nftables.service (4.3.9)
# loads at every boot. It is only checked here, not loaded: the build must not depend on it.
cis_4_3_10() {
    local out=/etc/nftables.conf table hook id host v4="" v6="" any=""
    table=$(param 4.3.4 table)
    [ -n "$table" ] || { log "error: 4.3.10 needs the company table (4.3.4 table)"; exit 1; }
    # NTP leaves only for the authorized time servers (2.3.3.1), by address when they are addresses.
    for host in $(param 2.3.3.1 servers); do
        case $host in
            *:*) v6="$v6${v6:+, }$host" ;;
            *[!0-9.]*) any=1 ;;
            *) v4="$v4${v4:+, }$host" ;;
        esac
    done
    {
        echo '#!/usr/sbin/nft -f'
        header
        printf 'flush ruleset\n\ntable %s {\n' "$table"
        for hook in $(param 4.3.5 hooks); do
            printf '\tchain %s {\n\t\ttype filter hook %s priority filter; policy %s;\n' \
                "$hook" "$hook" "$(param 4.3.8 "$hook" | grep . || echo accept)"
            # Rule lists arrive as one line (items joined by spaces); every rule ends with its verdict.
            for id in 4.3.6 4.3.7; do param "$id" "$hook"; done | awk '{
                r = ""
                for (i = 1; i <= NF; i++) {
                    r = r (r == "" ? "" : " ") $i
                    if ($i ~ /^(accept|drop|reject)$/) { print "\t\t" r; r = "" }
                } }'
            if [ "$hook" = output ]; then
                [ -z "$v4" ] || printf '\t\tip daddr { %s } udp dport 123 accept\n' "$v4"
                [ -z "$v6" ] || printf '\t\tip6 daddr { %s } udp dport 123 accept\n' "$v6"
                [ -z "$any" ] || printf '\t\tudp dport 123 accept\n'
            fi
            printf '\t}\n'
        done
        printf '}\n'
    } > "$out"
    chmod 0644 "$out"
    nft -c -f "$out"
    each params firewall_param_row     # the values of 4.3.4-4.3.8 are applied by this file
    log "4.3.10: $out written and checked; nftables.service loads it at boot"
}

# shellcheck disable=SC2154  # id is a plan column, bound by each()
firewall_param_row() {
    case $id in 4.3.4|4.3.5|4.3.6|4.3.7|4.3.8) applied "$id" ;; esac
}
