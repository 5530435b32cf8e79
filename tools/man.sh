#!/usr/bin/env bash
# tools/man.sh SMKI OUTDIR: the man pages, made from the same text as --help so the two
# cannot drift. smki.1 is `smki --help`; smki-CMD.1, one per command group, is
# `smki CMD --help` followed by the --help of every command under it (found by walking
# each "Commands:" table), verbatim in a preformatted block. Run at build time
# (CMake target man) against the smki just built. No home is needed: the walk runs with
# SMKI_HOME naming a folder that does not exist, so no command can act on one.
set -euo pipefail
SMKI=$1 OUT=$2
mkdir -p "$OUT"
export SMKI_HOME=/nonexistent/smki-man-home LC_ALL=C
unset SMKI_PIN SMKI_SO_PIN
VERSION=$("$SMKI" --version | awk '{print $2}')
# A fixed date keeps the pages reproducible (SOURCE_DATE_EPOCH, else the version's).
DATE=$(date -u -d "@${SOURCE_DATE_EPOCH:-0}" +%Y-%m-%d)
[[ -n ${SOURCE_DATE_EPOCH:-} ]] || DATE=$VERSION

# The command names of a --help text's "Commands:" table.
commands_of() { awk '/^Commands:/ { t = 1; next } t && /^  [a-z]/ { print $1 } t && !/^  / { t = 0 }'; }
# One command's summary line from its parent's table.
summary_of() { awk -v c="$2" '/^Commands:/ { t = 1; next } t && $1 == c { $1 = ""; sub(/^ +/, ""); print; exit }' <<<"$1"; }
# Help text as roff: preformatted, backslashes and leading dots/quotes escaped.
roff_block() {
    echo ".nf"
    sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
    echo ".fi"
}
help_of() { "$SMKI" "$@" --help 2>/dev/null || true; }

# Every command below PATH... (depth first), each as a section of the page.
walk() {
    local text sub
    text=$(help_of "$@")
    printf '.SH "%s"\n' "$(tr '[:lower:]' '[:upper:]' <<<"smki $*")"
    roff_block <<<"$text"
    for sub in $(commands_of <<<"$text"); do walk "$@" "$sub"; done
}

top=$(help_of)
{
    printf '.TH SMKI 1 "%s" "smki %s" "smki manual"\n' "$DATE" "$VERSION"
    printf '.SH NAME\nsmki \\- the public-key infrastructure of GB smart metering (SMKI and DCCKI)\n'
    printf '.SH SYNOPSIS\n.B smki\n[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR]\n'
    printf '.SH DESCRIPTION\n'
    roff_block <<<"$top"
    printf '.SH "SEE ALSO"\n'
    first=1
    for cmd in $(commands_of <<<"$top"); do
        [[ $first == 1 ]] || printf ',\n'
        printf '.BR smki-%s (1)' "$cmd"
        first=0
    done
    printf '\n'
} >"$OUT/smki.1"

for cmd in $(commands_of <<<"$top"); do
    {
        printf '.TH SMKI-%s 1 "%s" "smki %s" "smki manual"\n' "$(tr '[:lower:]' '[:upper:]' <<<"$cmd")" "$DATE" "$VERSION"
        printf '.SH NAME\nsmki-%s \\- %s\n' "$cmd" "$(summary_of "$top" "$cmd" | sed 's/\\/\\e/g')"
        walk "$cmd"
        printf '.SH "SEE ALSO"\n.BR smki (1)\n'
    } >"$OUT/smki-$cmd.1"
done
