# shellcheck shell=bash
# params: values of logic-shaped controls, applied by their cis_* functions (../cis/), which read
# them with `param ID KEY`: one awk over the plan, its columns found by name in plan-columns.tsv
# (a bash loop over the params rows on every call slows the build under emulation).
param() {
    awk -F'\t' -v i="$1" -v k="$2" -v e="$GOLDEN_PLAN_EMPTY" '
        NR == FNR { if ($1 == "params") for (c = 2; c <= NF; c++) col[$c] = c - 1; next }
        $col["kind"] == "params" && $col["id"] == i && $col["key"] == k {
            v = $col["value"]; print (v == e ? "" : v); exit }' "$COLUMNS" "$PLAN"
}
