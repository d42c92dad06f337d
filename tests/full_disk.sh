#!/bin/sh
# full_disk.sh — the trainer's --save on a filesystem that is really full
# reports the error, exits 1, leaves no temporary file and keeps the old
# checkpoint byte for byte, loadable. The filesystem is a 64 KiB tmpfs
# mounted for the test (needs root and permission to mount, as on CI's
# fresh Debian machine); a full one is made by filling it with dd.
#
# Where mounting is not permitted (an unprivileged container), that part
# prints "skipped: <reason>" and counts as neither passed nor failed.
# /dev/full stands in where it makes sense: the per-epoch CSV log is a
# plain file written in place, so --log-csv /dev/full must fail with a
# message; a checkpoint is written next to its path and renamed, which
# /dev/full cannot show, so it does not stand in for the tmpfs there.
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
out=${BUILD:-build}/full_disk
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
rm -rf "$out"; mkdir -p "$out/mnt"

if ! "$NNC" --main dsl-examples/xor.nn -o "$out/xor.c" ||
   ! gcc -std=c11 -O2 -Wall -Wextra -Werror $SANFLAGS -o "$out/xor" "$out/xor.c" -lz -lm; then
    fail "xor does not build"; echo "$passed passed, $failed failed"; exit 1
fi

# --log-csv /dev/full: every write fails (ENOSPC)
if "$out/xor" --epochs 3 --quiet --log-csv /dev/full > "$out/csv.log" 2>&1; then
    fail "--log-csv /dev/full: exit status 0"
elif grep -q '^error: cannot write /dev/full' "$out/csv.log"; then ok
else fail "--log-csv /dev/full: no message:"; cat "$out/csv.log"; fi

mnt="$out/mnt"
if ! why=$(mount -t tmpfs -o size=64k nnc_full_disk "$mnt" 2>&1); then
    echo "skipped: --save on a full filesystem: cannot mount a tmpfs: ${why:-mount failed}"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]; exit
fi
trap 'umount "$mnt" 2>/dev/null' EXIT

# a good checkpoint, then fill the filesystem to the last block
if "$out/xor" --epochs 100 --quiet --save "$mnt/ck.safetensors" > "$out/good.log" 2>&1
then ok; else fail "the first save failed:"; cat "$out/good.log"; fi
cp "$mnt/ck.safetensors" "$out/ck.before"
dd if=/dev/zero of="$mnt/fill" bs=4096 > /dev/null 2>&1
dd if=/dev/zero of="$mnt/fill2" bs=1 > /dev/null 2>&1
free=$(df -P "$mnt" | awk 'NR == 2 { print $4 }')
if [ "$free" = 0 ]; then ok; else fail "the tmpfs is not full: $free KiB free"; fi

# another seed trains other weights; saving them over ck must fail
"$out/xor" --epochs 100 --seed 7 --quiet --save "$mnt/ck.safetensors" > "$out/full.log" 2>&1
status=$?
if [ "$status" -eq 1 ] && grep -q "^error: cannot save $mnt/ck.safetensors: .*No space left on device" "$out/full.log"
then ok; else fail "save on a full filesystem: status $status, message:"; cat "$out/full.log"; fi
if cmp -s "$out/ck.before" "$mnt/ck.safetensors"; then ok
else fail "the old checkpoint changed"; fi
left=$(ls "$mnt" | grep -v -x -e ck.safetensors -e fill -e fill2)
if [ -z "$left" ]; then ok; else fail "files left behind: $left"; fi
if "$out/xor" --load "$mnt/ck.safetensors" --eval --quiet > "$out/load.log" 2>&1
then ok; else fail "the old checkpoint does not load:"; cat "$out/load.log"; fi

# room again: the same save now succeeds (the failure was the disk)
rm -f "$mnt/fill" "$mnt/fill2"
if "$out/xor" --epochs 100 --seed 7 --quiet --save "$mnt/ck.safetensors" > "$out/again.log" 2>&1 &&
   ! cmp -s "$out/ck.before" "$mnt/ck.safetensors"
then ok; else fail "saving with room again failed"; cat "$out/again.log"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
