#!/bin/sh
# exactcheck.sh — fused and --no-fuse code agree bit for bit
# (tests/exactcheck.c: weights on a 3-bit grid, inputs k/4, zero
# tolerance) for every model in dsl-examples/, tests/gradcheck/ and
# tests/exact/, and every fusion rule of compiler/fuse.c is compared.
#
# Each model's first line names the rules its kernels use (from
# nnc --emit=ir), so a new rule is covered as soon as a model that uses
# it is in one of those directories. The driver also reports how many of
# the compared tensors are exact in float (equal to a --dtype f64 build);
# the models of tests/exact/ are built so that all are, but the loss
# (checked: -DREQUIRE_EXACT), so there any order of summation gives the
# same bits. A rule covered only by models whose values are not exact is
# named in a "note:" line; a rule no model compares fails the run.
#
# softmax_xent_grad computes (p * sum(t) - t) / rows instead of going
# through -t / p and the softmax Jacobian: the same in exact arithmetic,
# not in float unless p is exact. Other models that use it are compared
# on their outputs and losses only; tests/exact/softmax_xent_grad.nn
# makes p exact (1/4) and is compared in full.
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
out=${BUILD:-build}/exactcheck
mkdir -p "$out"
INEXACT_RULES="softmax_xent_grad"
passed=0
failed=0
covered=" "       # rules of models compared in full
covered_exact=" " # of those, the models of tests/exact/

# rules FILE: the fusion rules of the kernels of every program, sorted
rules() {
    "$NNC" --emit=ir "$1" | awk '/^  k[0-9]/ && $2 != "-" { print $2 }' | sort -u | tr '\n' ' '
}

# forward_only RULES: whether the rules include one of INEXACT_RULES
forward_only() {
    for r in $INEXACT_RULES; do
        case " $1 " in *" $r "*) return 0 ;; esac
    done
    return 1
}

for nn in dsl-examples/*.nn tests/gradcheck/*.nn tests/exact/*.nn; do
    name=$(basename "$(dirname "$nn")")_$(basename "$nn" .nn)
    d="$out/$name"
    mkdir -p "$d"
    used=$(rules "$nn")
    mode=full; flags=""
    case "$nn" in
    tests/exact/*) flags=-DREQUIRE_EXACT ;;
    *) if forward_only "$used"; then mode=forward; flags=-DFORWARD_ONLY; fi ;;
    esac
    echo "$nn ($mode): ${used:-no fused kernels}"
    if ! "$NNC" --prefix fz "$nn" -o "$d/fz.c" ||
       ! "$NNC" --no-fuse --prefix uf "$nn" -o "$d/uf.c" ||
       ! "$NNC" --dtype f64 --prefix fd "$nn" -o "$d/fd.c" ||
       ! gcc -std=c11 -O2 -Wall -Wextra -Werror $SANFLAGS -fopenmp -I"$d" $flags \
            -DFC_NAME="\"$nn\"" -o "$d/check" tests/exactcheck.c "$d/uf.c" \
            "$d/fd.c" -lm; then
        echo "FAIL $nn: does not build"; failed=$((failed + 1)); continue
    fi
    if "$d/check"; then
        passed=$((passed + 1))
        [ "$mode" = full ] && covered="$covered$used"
        case "$nn" in tests/exact/*) covered_exact="$covered_exact$used" ;; esac
    else
        echo "FAIL $nn: fused and unfused differ"; failed=$((failed + 1))
    fi
done

# every rule fuse.c knows, compared in full by some model
for r in $(sed -n 's/.*\*rule = "\([a-z_0-9]*\)".*/\1/p' compiler/fuse.c); do
    case "$covered" in
    *" $r "*) passed=$((passed + 1))
              case "$covered_exact" in *" $r "*) ;;
              *) echo "note: rule $r is compared only on values that are not exact in float; add a model for it to tests/exact/" ;;
              esac ;;
    *) echo "FAIL rule $r: no model compared in full uses it"; failed=$((failed + 1)) ;;
    esac
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
