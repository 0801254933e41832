# shellcheck shell=bash
# shellcheck disable=SC2154  # id, path and text are plan columns, bound by each()
apply_banners() { each banners banner_row; }

banner_row() {
    printf '%b\n' "$text" > "$path"
    applied "$id"
}
