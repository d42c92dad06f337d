#!/bin/sh
# threads.sh — every dsl-example, and the gradient-check models whose
# products take the parallel paths of lower_gemm.c, train to the same
# bits on 1, 2 and 3 threads (tests/threads.c).
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
out=${BUILD:-build}/threads
mkdir -p "$out"
# Under the sanitizers 2 steps: every step splits its work as the first
# did, and 8 steps of the CNNs on three thread counts take minutes there
steps=8
[ -n "$SANFLAGS" ] && steps=2
passed=0
failed=0
for nn in dsl-examples/*.nn tests/gradcheck/gc_dense_tiles.nn \
          tests/gradcheck/gc_dense_blocked.nn; do
    name=$(basename "$nn" .nn)
    d="$out/$name"
    mkdir -p "$d"
    if ! "$NNC" --prefix th "$nn" -o "$d/th.c"; then
        echo "FAIL $nn: nnc failed"; failed=$((failed + 1)); continue
    fi
    if ! gcc -std=c11 -O2 -march=native -Wall -Wextra -Werror $SANFLAGS \
            -fopenmp -I"$d" -DTH_STEPS=$steps -o "$d/check" tests/threads.c "$d/th.c" -lm; then
        echo "FAIL $nn: harness does not compile"; failed=$((failed + 1)); continue
    fi
    if "$d/check"; then passed=$((passed + 1))
    else echo "FAIL $nn: results depend on the thread count"; failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
