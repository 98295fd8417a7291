#!/bin/sh
# make install and make uninstall under a DESTDIR: the files installed, a program built
# against the installed library with pkg-config --static, and nothing left afterwards.
. "$(dirname "$0")/lib.sh"

# make install installs ./aigc-run. Under make check the suite runs aigc-run-san from
# another build tree, which the install would link into ./aigc-run.
if ! [ "$AIGC_RUN" -ef "$ROOT/aigc-run" ]; then
    echo "1..0 # SKIP make install installs ./aigc-run, and this run tests $AIGC_RUN"
    exit 0
fi

# A make of its own, not a part of the one running the suite; the variables given to
# that one (BUILD, CFLAGS) still reach it through the environment.
mk() {
    env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory "$@"
}

D=$TMP/dest
mk install DESTDIR="$D" PREFIX=/usr >"$TMP/install.log" 2>&1
RC=$?
is "$RC" 0 "make install DESTDIR=... PREFIX=/usr exits 0"
[ "$RC" -eq 0 ] || diag "$(tail -20 "$TMP/install.log")"

want=$( {
    echo usr/bin/aigc-run
    echo usr/lib/libaigc.a
    echo usr/lib/pkgconfig/aigc.pc
    for f in include/aigc/*.h; do echo "usr/$f"; done
    for f in specs/*.yaml; do echo "usr/share/aigc-run/$f"; done
    for f in scripts/hooks/*.lua; do echo "usr/share/aigc-run/$f"; done
} | sort)
got=$(cd "$D" && find . -type f | sed 's|^\./||' | sort)
is "$got" "$want" "the binary, the library, aigc.pc, the headers, the specs and the hooks"
[ -x "$D/usr/bin/aigc-run" ]
ok $? "bin/aigc-run is executable"
like "$("$D/usr/bin/aigc-run" --version)" "aigc-run *" "the installed binary runs"

PC="env PKG_CONFIG_PATH=$D/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D pkg-config"
is "$($PC --modversion aigc)" "$("$AIGC_RUN" --version | sed 's/^aigc-run //')" \
    "aigc.pc's version is aigc-run --version's"

# A program that needs the library and, through it, libyaml: the static link works only
# when Requires.private and Libs.private name what libaigc.a needs.
cat >"$TMP/use.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "aigc/yaml.h"

int main(void) {
    const char *text = "answer: 42\n";
    ar_arena a;
    ag_error err;
    yt_doc doc;
    long v = 0;
    ar_init(&a, 4096);
    if (yt_load_string(&doc, &a, "inline", text, strlen(text), &err) != AG_OK ||
        yt_int(yt_get(doc.root, "answer"), "answer", 0, 100, &v, &err) != AG_OK)
        return 1;
    printf("%s %ld\n", AIGC_VERSION, v);
    ar_free(&a);
    return 0;
}
C
# shellcheck disable=SC2046 # pkg-config's output is a list of words
${CC:-cc} -o "$TMP/use" "$TMP/use.c" $($PC --static --cflags --libs aigc) 2>"$TMP/cc.log"
RC=$?
is "$RC" 0 "a program compiles and links with pkg-config --static --cflags --libs aigc"
[ "$RC" -eq 0 ] || diag "$(cat "$TMP/cc.log")"
like "$("$TMP/use" 2>&1)" "* 42" "and runs: the installed library parses YAML"

mk uninstall DESTDIR="$D" PREFIX=/usr >"$TMP/uninstall.log" 2>&1
is "$?" 0 "make uninstall exits 0"
is "$(cd "$D" && find . -type f)" "" "make uninstall leaves no file"
[ ! -e "$D/usr/share/aigc-run" ] && [ ! -e "$D/usr/include/aigc" ]
ok $? "nor share/aigc-run/ nor include/aigc/"

done_testing
