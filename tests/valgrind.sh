#!/bin/sh
# valgrind.sh — nnc itself leaks nothing and touches no invalid memory,
# on every example (all output forms) and on every bad program
# (tests/bad/ and the train-block ones in tests/train/bad/).
set -u
NNC=${NNC:-build/nnc}
out=${BUILD:-build}/valgrind
mkdir -p "$out"
passed=0
failed=0
if ! command -v valgrind >/dev/null; then
    echo "skip: valgrind not installed"; echo "0 passed, 0 failed"; exit 0
fi
run() {
    if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all \
           "$NNC" "$@" >/dev/null 2>"$out/log"; [ $? -ne 99 ]; then
        passed=$((passed + 1))
    else
        echo "FAIL valgrind: nnc $*"; head -20 "$out/log"; failed=$((failed + 1))
    fi
}
for nn in dsl-examples/*.nn; do
    run --main "$nn" -o "$out/x.c"
    run --no-fuse --stats "$nn"
    run --emit=ir "$nn"
done
for nn in tests/bad/*.nn tests/train/bad/*.nn; do
    run --check "$nn"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
