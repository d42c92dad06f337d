#!/bin/sh
# gradcheck.sh — every model in tests/gradcheck/ and every example in
# dense dsl-example, compiled with `nnc --dtype f64`: its gradients must
# match central finite differences of its loss (see tests/gradcheck.c).
# The convolutional examples are left out: minutes each in f64, and their
# ReLU kinks defeat finite differences; tests/gradcheck/gc_*.nn cover
# every one of their ops on small shapes.
#
# tests/gradcheck.sh FILE... checks those models instead (fused and
# --no-fuse), in $GRADCHECK_OUT (default $BUILD/gradcheck), with the
# inputs drawn from GC_SEED and the floor of the tolerance GC_FLOOR
# (see tests/gradcheck.c);
# tests/gradcheck_random.sh calls it so on generated models.
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
out=${GRADCHECK_OUT:-${BUILD:-build}/gradcheck}
mkdir -p "$out"
passed=0
failed=0
# check NN FLAGS: one model, compiled with extra nnc FLAGS (e.g. --no-fuse)
check() {
    nn=$1; flags=$2
    name=$(sed -n 's/^model \([A-Za-z0-9_]*\).*/\1/p' "$nn" | head -1)
    upper=$(printf '%s' "$name" | tr a-z A-Z)
    dir="$out/${flags:+unfused/}"
    mkdir -p "$dir"
    if ! "$NNC" --dtype f64 $flags "$nn" -o "$dir/$name.c"; then
        echo "FAIL $nn $flags: nnc --dtype f64 failed"; failed=$((failed + 1)); return
    fi
    classes=""
    grep -q "define ${upper}_CLASSES" "$dir/$name.h" && classes=-DGC_CLASSES
    if ! gcc -std=c11 -O1 -Wall -Wextra -Werror $SANFLAGS -I"$dir" \
            -DGC_PREFIX="$name" -DGC_UPPER="$upper" -DGC_NAME="\"$name $flags\"" \
            -DGC_HEADER="\"$name.h\"" -DGC_SEED="${GC_SEED:-12345}" -DGC_FLOOR="${GC_FLOOR:-1e-3}" $classes \
            -o "$dir/$name" tests/gradcheck.c "$dir/$name.c" -lm; then
        echo "FAIL $nn $flags: harness does not compile"; failed=$((failed + 1)); return
    fi
    if "$dir/$name"; then passed=$((passed + 1))
    else echo "FAIL $nn $flags: gradients differ from finite differences"; failed=$((failed + 1)); fi
}

if [ $# -gt 0 ]; then
    for nn; do
        check "$nn" ""
        check "$nn" --no-fuse
    done
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi
# every op and every fusion rule, fused and unfused
for nn in tests/gradcheck/*.nn; do
    check "$nn" ""
    check "$nn" --no-fuse
done
for nn in dsl-examples/xor*.nn dsl-examples/single_layer.nn dsl-examples/mnist_mlp.nn; do
    check "$nn" ""
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
