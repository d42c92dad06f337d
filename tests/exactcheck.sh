#!/bin/sh
# exactcheck.sh — fused and --no-fuse code agree bit for bit on values
# where float sums are exact (tests/exactcheck.c), for every model in
# dsl-examples/, tests/gradcheck/ and tests/exact/, and every fusion rule
# of compiler/fuse.c is covered by at least one model compared in full.
#
# Each model's line names the rules its kernels use (from nnc --emit=ir),
# so a new rule is covered as soon as a model that uses it is added to
# one of those directories; a rule no model uses fails the run.
#
# softmax_xent_grad computes (p * sum(t) - t) / rows instead of going
# through -t / p and the softmax Jacobian: the same in exact arithmetic,
# not in float unless p is exact. Models that use it are compared on their
# outputs and losses only, except those in tests/exact/, built so that p
# is exact (tests/exact/softmax_xent_grad.nn), which are compared in full.
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
out=${BUILD:-build}/exactcheck
mkdir -p "$out"
INEXACT_RULES="softmax_xent_grad"
passed=0
failed=0
covered=" "

# rules FILE: the fusion rules of the kernels of every program, sorted
rules() {
    "$NNC" --emit=ir "$1" | awk '/^  k[0-9]/ && $2 != "-" { print $2 }' | sort -u | tr '\n' ' '
}

for nn in dsl-examples/*.nn tests/gradcheck/*.nn tests/exact/*.nn; do
    name=$(basename "$(dirname "$nn")")_$(basename "$nn" .nn)
    d="$out/$name"
    mkdir -p "$d"
    used=$(rules "$nn")
    mode=full
    case "$nn" in
    tests/exact/*) ;;
    *) for r in $INEXACT_RULES; do
           case " $used " in *" $r "*) mode=forward ;; esac
       done ;;
    esac
    flag=""; [ "$mode" = forward ] && flag=-DFORWARD_ONLY
    echo "$nn ($mode): ${used:-no fused kernels}"
    if ! "$NNC" --prefix fz "$nn" -o "$d/fz.c" ||
       ! "$NNC" --no-fuse --prefix uf "$nn" -o "$d/uf.c" ||
       ! gcc -std=c11 -O2 -Wall -Wextra -Werror $SANFLAGS -fopenmp -I"$d" $flag \
            -DFC_NAME="\"$nn\"" -o "$d/check" tests/exactcheck.c "$d/uf.c" -lm; then
        echo "FAIL $nn: does not build"; failed=$((failed + 1)); continue
    fi
    if "$d/check"; then
        passed=$((passed + 1))
        [ "$mode" = full ] && covered="$covered$used"
    else
        echo "FAIL $nn: fused and unfused differ"; failed=$((failed + 1))
    fi
done

# every rule fuse.c knows, compared in full by some model
for r in $(sed -n 's/.*\*rule = "\([a-z_0-9]*\)".*/\1/p' compiler/fuse.c); do
    case "$covered" in
    *" $r "*) passed=$((passed + 1)) ;;
    *) echo "FAIL rule $r: no model compared in full uses it"; failed=$((failed + 1)) ;;
    esac
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
