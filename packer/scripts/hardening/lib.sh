# shellcheck shell=bash
# lib.sh: what every applier and CIS section of hardening-cis.sh shares: the plan read by column
# name, the record of applied controls, file writers, and one walk of the local filesystems.
PLAN=$GOLDEN_PROVISION/plan.tsv
COLUMNS=$GOLDEN_PROVISION/plan-columns.tsv
declare -A APPLIED=()
applied() { APPLIED[$1]=1; }

log() { echo "hardening-cis $HARDENING_VERSION: $*"; }
header() { printf '# Written by hardening-cis.sh %s from the golden baseline; do not edit.\n' "$HARDENING_VERSION"; }

# rows KIND: the plan's rows of one kind, as pipeline/image/hardening.py wrote them.
rows() { awk -F'\t' -v k="$1" '$2 == k' "$PLAN"; }

# Every row starts `id kind` (tables: id $GOLDEN_PLAN_EMPTY); the named columns follow.
controls_in_plan() { awk -F'\t' -v e="$GOLDEN_PLAN_EMPTY" '$1 != e {print $1}' "$PLAN" | sort -u | wc -l; }

# each KIND BODY: run BODY once per plan row of KIND, with one variable per column, named as
# plan-columns.tsv names them (pipeline/image/hardening.py PLAN_COLUMNS); an empty field is "".
each() {
    local _kind=$1 _body=$2 _i
    local -a _cols _vals
    IFS=$'\t' read -r -a _cols < <(awk -F'\t' -v k="$_kind" '$1 == k' "$COLUMNS")
    if [ ${#_cols[@]} -lt 2 ]; then log "error: $COLUMNS names no columns for the plan's kind $_kind"; exit 1; fi
    _cols=("${_cols[@]:1}")
    local "${_cols[@]}"
    while IFS=$'\t' read -r -a _vals; do
        for _i in "${!_cols[@]}"; do
            if [ "${_vals[_i]-}" = "$GOLDEN_PLAN_EMPTY" ]; then _vals[_i]=""; fi
            printf -v "${_cols[_i]}" '%s' "${_vals[_i]-}"
        done
        "$_body"
    done < <(rows "$_kind")
}

installed() {
    [ "$(dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# set_kv FILE SEP KEY VALUE: one effective setting; VALUE @present writes the bare flag, @absent removes it.
set_kv() {
    local file=$1 sep=$2 key=$3 value=$4 key_re
    key_re=$(printf '%s' "$key" | sed 's/[][\.*^$/]/\\&/g')
    mkdir -p "$(dirname "$file")"
    touch "$file"
    sed -i -E "/^[[:space:]]*${key_re}([[:space:]]|=|\$)/d" "$file"
    case "$value" in
        @absent) ;;
        @present) printf '%s\n' "$key" >> "$file" ;;
        *) printf '%s%s%s\n' "$key" "$sep" "$value" >> "$file" ;;
    esac
}

# dropin_kv FILE SECTION KEY VALUE: a systemd-style drop-in owned by this script.
dropin_kv() {
    local file=$1 section=$2 key=$3 value=$4
    mkdir -p "$(dirname "$file")"
    [ -s "$file" ] || { header; printf '[%s]\n' "$section"; } > "$file"
    printf '%s=%s\n' "$key" "$value" >> "$file"
}

# grub.cfg is generated once, after every step that changes its inputs (15-20 s under emulation).
GRUB_STALE=
grub_stale() { GRUB_STALE=1; }
refresh_grub() {
    update-grub 2>&1 | sed 's/^/  update-grub: /'
    GRUB_STALE=
}
refresh_grub_if_stale() { if [ -n "$GRUB_STALE" ]; then refresh_grub; fi; }

# accounts: every account as `name uid gid home login|nologin`; login means one of the shells
# the checks count as login shells (pipeline/checks/facts.py LOGIN_SHELLS, passed in the plan's meta).
accounts() {
    awk -F: 'NR == FNR { shells[$0] = 1; next } { print $1, $3, $4, $6, (($7 in shells) ? "login" : "nologin") }' \
        <(eval "$GOLDEN_LOGIN_SHELLS") /etc/passwd
}

# walk_local_files, then scanned TAG: NUL-separated paths of the local filesystems from one walk
# (in the calling shell, not a pipeline's subshell): S setuid or setgid file, F world-writable
# file, D world-writable directory without the sticky bit, U file of no user, G file of no group.
SCAN=
walk_local_files() {
    local mount
    [ -z "$SCAN" ] || return 0
    SCAN=$(mktemp /run/golden-hardening-scan.XXXXXX)
    trap 'rm -f "$SCAN"' EXIT
    findmnt -n -l -o TARGET -t ext2,ext3,ext4,xfs,btrfs | while read -r mount; do
        find "$mount" -xdev \( -type f \( -perm -4000 -o -perm -2000 \) -printf 'S %p\0' \) , \
            \( -type f -perm -0002 -printf 'F %p\0' \) , \( -type d -perm -0002 ! -perm -1000 -printf 'D %p\0' \) , \
            \( -nouser -printf 'U %p\0' \) , \( -nogroup -printf 'G %p\0' \) 2>/dev/null || true
    done > "$SCAN"
}

# A path an earlier step removed is left out.
scanned() {
    local entry path
    while IFS= read -r -d '' entry; do
        path=${entry#* }
        if [ "${entry%% *}" = "$1" ] && { [ -e "$path" ] || [ -L "$path" ]; }; then printf '%s\0' "$path"; fi
    done < "$SCAN"
}

# shellcheck disable=SC2154  # id and reason are plan columns, bound by each()
skip_row() { skipped+="${skipped:+, }{\"id\": \"$id\", \"reason\": \"$reason\"}"; }

# What the hardening's outcome depends on: this version's code, the plan (with the image's meta, agents
# and time servers) and the installed packages. The record keeps it as the hardening left the image.
hardening_fingerprint() {
    {
        printf 'hardening-cis %s\n' "$HARDENING_VERSION"
        cat "$PLAN" "$COLUMNS" "$GOLDEN_PROVISION/plan-meta.env"
        cat "$GOLDEN_PROVISION/agents.tsv" "$GOLDEN_PROVISION/time-servers.txt" 2>/dev/null || true
        cat "$GOLDEN_PROVISION"/hardening/lib.sh "$GOLDEN_PROVISION"/hardening/appliers/*.sh \
            "$GOLDEN_PROVISION"/hardening/cis/*.sh
        dpkg-query -W -f '${Package} ${Version} ${Architecture}\n' | LC_ALL=C sort
    } | sha256sum | cut -d' ' -f1
}

# already_hardened FINGERPRINT: the image's record says the last hardening left it with this fingerprint,
# i.e. this is a layer on an image hardened by the same code and plan, and no package changed since.
already_hardened() {
    [ -f "$GOLDEN_FILE_RECORD" ] && grep -q "^  \"fingerprint\": \"$1\",\$" "$GOLDEN_FILE_RECORD"
}

write_record() {
    local ids skipped fingerprint out=$GOLDEN_FILE_RECORD
    mkdir -p "$(dirname "$out")"
    ids=$(printf '%s\n' "${!APPLIED[@]}" | sort -t. -k1,1n -k2,2n -k3,3n -k4,4n -k5,5n | sed 's/.*/"&"/' | paste -sd, -)
    skipped=""
    each skip skip_row
    fingerprint=$(hardening_fingerprint)
    cat > "$out" <<JSON
{
  "hardening_version": "$HARDENING_VERSION",
  "fingerprint": "$fingerprint",
  "baseline_sha256": "$GOLDEN_BASELINE_SHA256",
  "role": "$GOLDEN_ROLE",
  "level": $GOLDEN_LEVEL,
  "image": "$GOLDEN_IMAGE",
  "applied": [$ids],
  "skipped": [$skipped]
}
JSON
    chmod 0644 "$out"
}
