#!/bin/sh
# generated_fresh.sh — generated/ holds exactly what the current nnc emits
# for dsl-examples/ (run `make generated` after changing either).
set -u
NNC=${NNC:-build/nnc}
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for nn in dsl-examples/*.nn; do
    name=$(basename "$nn" .nn)
    if ! "$NNC" --main "$nn" -o "$tmp/$name.c"; then
        echo "FAIL $nn does not compile"
        failed=$((failed + 1))
    elif cmp -s "$tmp/$name.c" "generated/$name.c" &&
         cmp -s "$tmp/$name.h" "generated/$name.h"; then
        passed=$((passed + 1))
    else
        echo "FAIL generated/$name.c is stale: run 'make generated'"
        failed=$((failed + 1))
    fi
done
for c in generated/*.c; do
    [ -e "$c" ] || continue
    name=$(basename "$c" .c)
    if [ ! -e "dsl-examples/$name.nn" ]; then
        echo "FAIL $c has no dsl-examples/$name.nn"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
