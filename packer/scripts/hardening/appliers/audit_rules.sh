# shellcheck shell=bash
# shellcheck disable=SC2154  # id and rule are plan columns, bound by each()
apply_audit_rules() {
    local out=/etc/audit/rules.d/50-golden-cis.rules
    [ -n "$(rows audit_rules)" ] || return 0
    mkdir -p /etc/audit/rules.d
    header > "$out"
    each audit_rules audit_rule_row
    chmod 0640 "$out"
}

audit_rule_row() {
    printf '%s\n' "$rule" >> "$out"
    applied "$id"
}
