#!/bin/sh
# bce_loss.sh — the bce loss, which takes one log where the label is 0 or
# 1, has the bits of PyTorch's two-log expression (tests/bce_loss.c), in
# float and in double, fused and --no-fuse.
# Environment: NNC, BUILD, SANFLAGS as in tests/run_all.sh.
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
out=${BUILD:-build}/bce_loss
passed=0
failed=0
for dtype in f32 f64; do
    real=float; [ "$dtype" = f64 ] && real=double
    for flags in "" --no-fuse; do
        d="$out/$dtype$flags"; rm -rf "$d"; mkdir -p "$d"
        what="bce loss ($dtype${flags:+ $flags})"
        # shellcheck disable=SC2086
        if "$NNC" --dtype "$dtype" $flags --prefix bl tests/bce_loss/bl.nn -o "$d/bl.c" &&
           gcc -std=c11 -O2 -Wall -Wextra -Werror $SANFLAGS -DREAL="$real" -I"$d" \
               -o "$d/check" tests/bce_loss.c "$d/bl.c" -lm &&
           "$d/check"
        then passed=$((passed + 1)); else echo "FAIL $what"; failed=$((failed + 1)); fi
    done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
