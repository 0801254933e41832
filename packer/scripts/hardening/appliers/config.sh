# shellcheck shell=bash
# shellcheck disable=SC2154  # the variables of the *_row functions are plan columns, bound by each()
# config: every configuration source has its writer in the plan (pipeline/image/hardening.py
# CONFIG_WRITERS): the file, how a setting is written (a systemd drop-in section or KEY SEP VALUE),
# and whether the file is the hardening's own, rewritten whole.
apply_config() {
    local -A writer=() target=() form=()
    each config_writer config_writer_row
    each config config_row
}

config_writer_row() {
    writer[$source]=$writer_kind
    target[$source]=$file
    form[$source]=$(printf '%b' "$form_text")
    if [ "$owned" = owned ]; then rm -f "$file"; fi
}

config_row() {
    case "${writer[$source]-}" in
        dropin) dropin_kv "${target[$source]}" "${form[$source]}" "$key" "$value" ;;
        set_kv) set_kv "${target[$source]}" "${form[$source]}" "$key" "$value" ;;
        *) log "error: no writer for configuration source $source ($id)"; exit 1 ;;
    esac
    applied "$id"
}
