#!/bin/sh
# runtime_extra.sh — the runtime as nnc embeds it (one translation unit,
# static functions, -Werror), its unit tests run in that form, and
# safetensors files it writes read back in Python with numpy and torch.
set -u
BUILD=${BUILD:-build}
SANFLAGS=${SANFLAGS:-}
passed=0
failed=0
if EXTRA_CFLAGS="$SANFLAGS" tests/runtime_embed_check.sh --run-tests "$BUILD/rt_embed"
then passed=$((passed + 1)); else echo "FAIL runtime does not embed cleanly"; failed=$((failed + 1)); fi

if gcc -std=c11 -Wall -Wextra -Werror -O1 $SANFLAGS -D_POSIX_C_SOURCE=200809L \
       -Iruntime -o "$BUILD/st_export" tests/st_export.c runtime/rt_safetensors.c -lm &&
   "$BUILD/st_export" "$BUILD/export32.safetensors" "$BUILD/export64.safetensors"; then
    /usr/bin/python3 tests/test_safetensors_torch.py "$BUILD/export32.safetensors" \
        "$BUILD/export64.safetensors"
    status=$?
    if [ $status -eq 0 ]; then passed=$((passed + 1))
    elif [ $status -eq 77 ]; then echo "skip: python3-torch/numpy not installed"
    else echo "FAIL safetensors files do not read back in Python"; failed=$((failed + 1)); fi
else
    echo "FAIL st_export"; failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
