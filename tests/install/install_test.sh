#!/bin/sh
# install_test.sh CMAKE BUILD_DIR LIBDIR CC — ctest "install": installs the build into a
# temporary prefix, runs the installed tool on its installed default model, and builds and
# runs a small C program against the installed header and pkg-config file. Exit 77 = skipped.
set -eu
CMAKE=$1 BUILD=$2 LIBDIR=$3 CC=$4
command -v pkg-config >/dev/null 2>&1 || { echo "no pkg-config: skipped"; exit 77; }
PREFIX=$(mktemp -d "${TMPDIR:-/tmp}/emosteer-install.XXXXXX")
trap 'rm -rf "$PREFIX"' EXIT
HERE=$(cd "$(dirname "$0")" && pwd)

"$CMAKE" --install "$BUILD" --prefix "$PREFIX" >"$PREFIX/install.log"
for f in bin/emosteer "$LIBDIR/libemosteer.a" include/emosteer.h "$LIBDIR/pkgconfig/emosteer.pc" \
         share/emosteer/models/demo-16m.q8_0.gguf share/emosteer/models/demo-16m.ev.gguf \
         share/emosteer/lexicon/emotions.tsv share/emosteer/lexicon/vader_lexicon.txt \
         share/emosteer/queries/emosteer-queries.json; do
    [ -f "$PREFIX/$f" ] || { echo "FAIL: $f was not installed"; exit 1; }
done

# the installed tool finds its installed default model (not the source tree's)
out=$(env -u EMOSTEER_MODEL "$PREFIX/bin/emosteer" info)
echo "$out" | head -3
echo "$out" | grep -q "^file: .*/share/emosteer/models/demo-16m.q8_0.gguf" ||
    { echo "FAIL: emosteer info did not use the installed model"; exit 1; }
echo "$out" | grep -q "^architecture: *llama" || { echo "FAIL: emosteer info output"; exit 1; }

# a program built from the installed header and library only
export PKG_CONFIG_PATH="$PREFIX/$LIBDIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
flags=$(pkg-config --cflags --libs --static emosteer)
echo "pkg-config: $flags"
# shellcheck disable=SC2086
"$CC" -std=c11 -Wall -Wextra -Werror -pedantic -o "$PREFIX/hello" "$HERE/hello.c" $flags
"$PREFIX/hello" "$PREFIX/share/emosteer/models/demo-16m.q8_0.gguf"
echo "install: ok"
