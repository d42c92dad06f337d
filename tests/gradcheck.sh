#!/bin/sh
# gradcheck.sh — every model in tests/gradcheck/ and every example in
# dense dsl-example, compiled with `nnc --dtype f64`: its gradients must
# match central finite differences of its loss (see tests/gradcheck.c).
# The convolutional examples are left out: minutes each in f64, and their
# ReLU kinks defeat finite differences; tests/gradcheck/gc_*.nn cover
# every one of their ops on small shapes.
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
out=${BUILD:-build}/gradcheck
mkdir -p "$out"
passed=0
failed=0
for nn in tests/gradcheck/*.nn dsl-examples/xor*.nn dsl-examples/single_layer.nn \
          dsl-examples/mnist_mlp.nn; do
    name=$(sed -n 's/^model \([A-Za-z0-9_]*\).*/\1/p' "$nn" | head -1)
    upper=$(printf '%s' "$name" | tr a-z A-Z)
    if ! "$NNC" --dtype f64 "$nn" -o "$out/$name.c"; then
        echo "FAIL $nn: nnc --dtype f64 failed"; failed=$((failed + 1)); continue
    fi
    classes=""
    grep -q "define ${upper}_CLASSES" "$out/$name.h" && classes=-DGC_CLASSES
    if ! gcc -std=c11 -O1 -Wall -Wextra -Werror $SANFLAGS -I"$out" \
            -DGC_PREFIX="$name" -DGC_UPPER="$upper" -DGC_NAME="\"$name\"" \
            -DGC_HEADER="\"$name.h\"" $classes \
            -o "$out/$name" tests/gradcheck.c "$out/$name.c" -lm; then
        echo "FAIL $nn: harness does not compile"; failed=$((failed + 1)); continue
    fi
    if "$out/$name"; then passed=$((passed + 1))
    else echo "FAIL $nn: gradients differ from finite differences"; failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
