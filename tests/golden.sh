#!/bin/sh
# golden.sh — every bad program in tests/bad/ gets exactly the diagnostics
# in its .err file, and nnc exits with status 1 (not a crash, not 0).
#   tests/golden.sh            check
#   tests/golden.sh --update   rewrite the .err files (review the diff!)
set -u
NNC=${NNC:-build/nnc}
passed=0
failed=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for nn in tests/bad/*.nn; do
    err=${nn%.nn}.err
    "$NNC" --check "$nn" 2>"$tmp" >/dev/null
    status=$?
    if [ "${1:-}" = "--update" ]; then
        cp "$tmp" "$err"
    fi
    if [ "$status" -ne 1 ]; then
        echo "FAIL $nn: exit status $status, expected 1"
        failed=$((failed + 1))
    elif ! cmp -s "$tmp" "$err"; then
        echo "FAIL $nn: diagnostics differ from $err:"
        diff "$err" "$tmp" | head -20
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
