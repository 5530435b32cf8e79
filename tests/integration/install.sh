#!/usr/bin/env bash
# make install and make deb, checked from the outside: cmake --install into a DESTDIR
# (prefix /usr, then another prefix) gives the binary, a man page for smki and for each
# command group of `smki --help` (whose text is the --help text), bash completion that
# completes commands and options, systemd units that systemd-analyze accepts (the
# repository's sandbox scored), sysusers/tmpfiles entries and example configurations
# that smki itself accepts. Then the .deb (CPack) inspected with dpkg-deb and lintian:
# runtime dependencies only, no errors.
#
# Environment (ctest sets it): SMKI_BIN, SMKI_BUILD, SMKI_SRC.
set -euo pipefail

: "${SMKI_BIN:?set SMKI_BIN to the smki binary}"
: "${SMKI_SRC:?set SMKI_SRC to the source tree}"
SMKI_BUILD=${SMKI_BUILD:-$(dirname "$(dirname "$SMKI_BIN")")}
PY=/usr/bin/python3
TIMEOUT=60
unset SMKI_PIN SMKI_SO_PIN SMKI_HOME SMKI_PKCS11_MODULE SOFTHSM2_CONF

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/smki-install.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
W=$ROOT/work
mkdir -p "$W"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# ---- cmake --install into a DESTDIR, prefix /usr ----------------------------------------------
S=$ROOT/stage
run env DESTDIR="$S" cmake --install "$SMKI_BUILD" --prefix /usr
if [[ $RC == 0 ]]; then ok "cmake --install with DESTDIR and prefix /usr"; else not_ok "cmake --install failed"; diag; fi
check "the binary is installed, executable" test -x "$S/usr/bin/smki"
check "and runs" "$S/usr/bin/smki" --version
check "nothing is installed outside DESTDIR's /usr, lib and etc" \
    bash -c "cd '$S' && [ -z \"\$(ls | grep -vxE 'usr|lib')\" ]"

# A man page for smki and for each command group its --help lists, and no other.
groups=$("$SMKI_BIN" --help | awk '/^Commands:/ { t = 1; next } t && /^  [a-z]/ { print $1 }' | sort)
pages=$(cd "$S/usr/share/man/man1" && ls | sed -n 's/^smki-\(.*\)\.1\.gz$/\1/p' | sort)
if [[ -n $groups && $groups == "$pages" ]]; then ok "a man page for each of the $(wc -w <<<"$groups") command groups"; else
    not_ok "man pages ($pages) differ from the command groups ($groups)"
fi
check "smki.1.gz is there" test -s "$S/usr/share/man/man1/smki.1.gz"
run env MANWIDTH=200 man -l "$S/usr/share/man/man1/smki-ca.1.gz"
help=$("$SMKI_BIN" ca issue --help) # whole, then its first line: head in the pipe could end smki with SIGPIPE
want=$(head -1 <<<"$help" | sed 's/  */ /g')
got=$(sed 's/  */ /g' <<<"$OUT")
if [[ $got == *"$want"* ]]; then ok "man smki-ca renders, with 'smki ca issue --help' in it"; else
    not_ok "man smki-ca does not hold '$want'"
    diag
fi
check "man smki-ra holds the RA's request commands" grep -q "smki ra request submit" <<<"$(MANWIDTH=200 man -l "$S/usr/share/man/man1/smki-ra.1.gz")"
run bash -c "zcat '$S/usr/share/man/man1/smki-ca.1.gz' | groff -man -Tutf8 -ww -z"
if [[ -z $ERR && $RC == 0 ]]; then ok "groff -ww finds nothing to warn about in smki-ca.1"; else not_ok "groff warns"; diag; fi

# Bash completion, from the installed file, asking the installed smki.
comp() {
    PATH="$S/usr/bin:$PATH" bash -c "source '$S/usr/share/bash-completion/completions/smki'
        COMP_WORDS=($*); COMP_CWORD=\$((\${#COMP_WORDS[@]} - 1)); _smki; echo \"\${COMPREPLY[*]}\""
}
c=$(comp smki "''")
[[ " $c " == *" ca "* && " $c " == *" doctor "* && " $c " == *" repo "* ]] && ok "completion: the commands" ||
    not_ok "completion of 'smki ': '$c'"
c=$(comp smki ca "''")
[[ " $c " == *" issue "* && " $c " == *" crl "* ]] && ok "completion: a group's commands" || not_ok "completion of 'smki ca ': '$c'"
c=$(comp smki ca issue --e)
[[ $c == "--env --eui" ]] && ok "completion: a command's options" || not_ok "completion of 'smki ca issue --e': '$c'"
c=$(comp smki ra request "''")
[[ $c == "approve execute list reject show submit" ]] && ok "completion: verbs from the usage lines" ||
    not_ok "completion of 'smki ra request ': '$c'"

# systemd units, sysusers and tmpfiles.
U=$S/usr/lib/systemd/system
for u in smki-repo.service smki-enrol.service smki-publish@.service smki-publish@.timer; do
    check "unit $u installed" test -s "$U/$u"
done
mkdir -p "$W/units"
for u in smki-repo.service smki-publish@.service smki-publish@.timer; do
    sed "s#/usr/bin/smki#$S/usr/bin/smki#" "$U/$u" >"$W/units/$u"
done
cp "$W/units/smki-publish@.service" "$W/units/smki-publish@production.service"
cp "$W/units/smki-publish@.timer" "$W/units/smki-publish@production.timer"
run systemd-analyze verify --man=no "$W/units/smki-repo.service" "$W/units/smki-publish@production.service" \
    "$W/units/smki-publish@production.timer"
if [[ $RC == 0 && -z $ERR ]]; then ok "systemd-analyze verify accepts the units"; else not_ok "systemd-analyze verify"; diag; fi
run systemd-analyze security --offline=yes "$W/units/smki-repo.service"
score=$(grep -oE 'Overall exposure level for [^:]*: [0-9.]+' <<<"$OUT" | awk '{print $NF}')
if [[ -n $score ]] && awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }'; then
    ok "the repository's sandbox: exposure $score (systemd-analyze security; at most 2.5)"
else
    not_ok "the repository's sandbox exposure is '$score'"
fi
for d in ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes ReadOnlyPaths=/var/lib/smki User=smki-repo \
    'ExecReload=/bin/kill -HUP $MAINPID'; do
    check "smki-repo.service has $d" grep -qx "$d.*" "$U/smki-repo.service"
done
check "the publish unit gets the PIN by LoadCredential" grep -q '^LoadCredential=user.pin:/etc/smki/credentials/user.pin' "$U/smki-publish@.service"
check "and hands smki only the credential's path" grep -q -- '--pin-file %d/user.pin ca crl --env %i' "$U/smki-publish@.service"
check "sysusers.d makes users smki and smki-repo" grep -q '^u smki-repo' "$S/usr/lib/sysusers.d/smki.conf"
check "tmpfiles.d makes the CA's home" grep -q '^d /var/lib/smki 0750 smki smki' "$S/usr/lib/tmpfiles.d/smki.conf"

# The examples are configurations smki accepts (every section and key known).
for ex in smki repo; do
    h=$W/home-$ex
    mkdir -m 700 "$h"
    cp "$S/usr/share/doc/smki/examples/$ex.conf" "$h/smki.conf"
    run smki --home "$h" --json doctor
    expect_json "the example $ex.conf passes smki's configuration check" \
        'any(x["check"] == "config" and x["level"] == "ok" for x in d["checks"])'
done

# ---- Another prefix ------------------------------------------------------------------------------
run env DESTDIR="$ROOT/stage2" cmake --install "$SMKI_BUILD" --prefix /opt/smki
check "prefix /opt/smki: the binary under it" test -x "$ROOT/stage2/opt/smki/bin/smki"
check "and the man pages" test -s "$ROOT/stage2/opt/smki/share/man/man1/smki-repo.1.gz"
check "and nothing elsewhere" bash -c "cd '$ROOT/stage2' && [ \"\$(ls)\" = opt ]"

# ---- The Debian package ---------------------------------------------------------------------------
run cpack --config "$SMKI_BUILD/CPackConfig.cmake" -G DEB -B "$ROOT/deb"
deb=$(ls "$ROOT"/deb/smki_*.deb 2>/dev/null | head -1)
if [[ -n $deb ]]; then ok "cpack made $(basename "$deb")"; else not_ok "cpack made no .deb"; diag; fi
run dpkg-deb -f "$deb" Depends
for dep in libssl3 liblmdb0 libp11-3 libh2o-evloop; do expect_in "$dep" "the package depends on $dep (dpkg-shlibdeps)"; done
expect_in "procps" "and on procps (/bin/kill, for smki-repo.service's ExecReload)"
for tool in cmocka clang valgrind wrk nginx curl python3 opensc swtpm postgresql; do
    expect_not_in "$tool" "and not on $tool (tests, fuzzing, benches)"
done
run dpkg-deb -c "$deb"
for f in ./usr/bin/smki /systemd/system/smki-repo.service ./usr/share/man/man1/smki-ca.1.gz \
    ./usr/share/bash-completion/completions/smki ./usr/share/doc/smki/copyright ./usr/share/doc/smki/examples/smki.conf; do
    expect_in "$f" "the package holds $f"
done
run lintian --tag-display-limit 0 "$deb"
# lintian exits 0, or 1 when it reports errors; anything else (127: not installed) is no check at all
if [[ $RC != 0 && $RC != 1 ]]; then not_ok "lintian did not run (exit $RC)"; diag
elif grep -q '^E: ' <<<"$OUT"; then not_ok "lintian reports errors"; diag; else ok "lintian: no errors"; fi
if grep -q '^W: ' <<<"$OUT"; then
    echo "# lintian warnings:"
    grep '^W: ' <<<"$OUT" | sed 's/^/#   /'
fi
check "the maintainer scripts make the users and folders" grep -q 'systemd-sysusers smki.conf' \
    <(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst)

finish
