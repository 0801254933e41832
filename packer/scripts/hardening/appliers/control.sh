# shellcheck shell=bash
# shellcheck disable=SC2154  # id is a plan column, bound by each()
# Logic-shaped controls: a function named after the CIS id (../cis/), called when the plan lists the id.
apply_controls() { each control control_row; }

control_row() {
    local fn="cis_${id//./_}"
    if declare -F "$fn" >/dev/null; then
        "$fn"
        applied "$id"
    fi
}
