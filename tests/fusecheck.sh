#!/bin/sh
# fusecheck.sh — every dsl-example, fused and --no-fuse, trains alike
# (tests/fusecheck.c), and fusion does not make the arena larger (beyond
# 1 KiB: placement is a heuristic, and on toy graphs moving ops into a
# kernel can cost one 64-byte alignment unit).
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
out=${BUILD:-build}/fusecheck
mkdir -p "$out"
# Under the sanitizers 3 steps: each runs the code of the first, and 20
# of the CNNs take minutes there
steps=20
[ -n "$SANFLAGS" ] && steps=3
passed=0
failed=0
for nn in dsl-examples/*.nn tests/gradcheck/*.nn; do
    name=$(basename "$nn" .nn)
    d="$out/$name"
    mkdir -p "$d"
    if ! "$NNC" --prefix fz "$nn" -o "$d/fz.c" ||
       ! "$NNC" --no-fuse --prefix uf "$nn" -o "$d/uf.c"; then
        echo "FAIL $nn: nnc failed"; failed=$((failed + 1)); continue
    fi
    if ! gcc -std=c11 -O2 -Wall -Wextra -Werror $SANFLAGS -fopenmp -I"$d" \
            -DFC_NAME="\"$name\"" -DFC_STEPS=$steps -o "$d/check" tests/fusecheck.c \
            "$d/fz.c" "$d/uf.c" -lm; then
        echo "FAIL $nn: harness does not compile"; failed=$((failed + 1)); continue
    fi
    if "$d/check"; then passed=$((passed + 1))
    else echo "FAIL $nn: fused and unfused training differ"; failed=$((failed + 1)); fi
    fa=$("$NNC" --stats "$nn" | sed -n 's/^arena_bytes=//p')
    ua=$("$NNC" --no-fuse --stats "$nn" | sed -n 's/^arena_bytes=//p')
    if [ "$fa" -le $((ua + 1024)) ]; then passed=$((passed + 1))
    else echo "FAIL $nn: fused arena $fa bytes > unfused $ua"; failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
