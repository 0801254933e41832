# shellcheck shell=bash
# shellcheck disable=SC2154  # the variables of file_row are plan columns, bound by each()
# files: permissions only ever lose bits; a wrong owner or group becomes the baseline's (first) one.
apply_files() { each files file_row; }

file_row() {
    local current group matched="" one
    applied "$id"
    # Globs expand here, unquoted: GLOB_SAFE (facts.py) keeps patterns free of spaces and of
    # anything else the shell reads. An unmatched glob stays literal and fails the -e test.
    for one in $path; do
        [ -e "$one" ] || continue
        matched=1
        if [ -n "$owner" ]; then chown "$owner" "$one"; fi
        if [ -n "$groups" ]; then
            current=$(stat -L -c %G "$one")
            group=${groups%%|*}
            case "|$groups|" in *"|$current|"*) ;; *) chgrp "$group" "$one" ;; esac
        fi
        if [ -n "$mode" ]; then
            current=$(stat -L -c %a "$one")
            chmod "$(printf '%o' $(( 8#$current & 8#$mode )))" "$one"
        fi
    done
    [ -n "$matched" ] || [ "$absent" = absent_ok ] || log "warning: $path matches no file"
}
