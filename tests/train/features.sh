#!/bin/sh
# features.sh — the train block's run-time features, end to end, on the
# small CNN of tests/train/img.nn and data from make_img.awk:
#   resume: 3 epochs, then --resume to 6, equals 6 epochs in one run, bit
#     for bit (weights, log, final line), with dropout, AdamW, warm-up,
#     cosine schedule, augmentation, clipping, validation and checkpoints;
#   validation split, epoch figures, CSV log, confusion matrix;
#   checkpoint best(...) holds the best epoch's weights;
#   early stopping; freeze; init_from; clipping and augmentation against
#   their definitions (unit_driver.c, clip_torch.py);
#   the trainer's command line;
#   compile-time diagnostics of tests/train/bad/*.nn (golden .err files;
#   `features.sh --update` rewrites them).
# Environment: NNC, BUILD, SANFLAGS, PYTHON (default /usr/bin/python3).
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
PYTHON=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
out=${BUILD:-build}/train/features
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
CFLAGS_GEN="-std=c11 -O2 -Wall -Wextra -Werror -fopenmp $SANFLAGS"
export OMP_NUM_THREADS=2

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)

# ---- diagnostics ------------------------------------------------------
for nn in "$here"/bad/*.nn; do
    rel=tests/train/bad/$(basename "$nn")
    err=${nn%.nn}.err
    (cd "$here/../.." && "$NNC" --check "$rel") 2> "$out/diag" > /dev/null
    status=$?
    [ "${1:-}" = "--update" ] && cp "$out/diag" "$err"
    if [ "$status" -ne 1 ]; then fail "$rel: exit status $status, expected 1"
    elif cmp -s "$out/diag" "$err"; then ok
    else fail "$rel: diagnostics differ from its .err:"; diff "$err" "$out/diag" | head -5
    fi
done

# ---- the model, its data and its variants -------------------------------
# build NAME NN: compiles NN into $out/NAME/NAME with the data beside it
build() {
    d="$out/$1"
    mkdir -p "$d"
    cp "$out/img.csv" "$out/img_test.csv" "$d/"
    if ! "$NNC" --main "$2" -o "$d/$1.c" 2> "$d/nnc.log"; then
        fail "$1: nnc: $(head -1 "$d/nnc.log")"; return 1
    fi
    if ! gcc $CFLAGS_GEN -o "$d/$1" "$d/$1.c" -lz -lm 2> "$d/cc.log"; then
        fail "$1: does not compile: $(head -3 "$d/cc.log")"; return 1
    fi
}
# variant NAME SED-SCRIPT: img.nn edited
variant() { sed "$2" "$here/img.nn" > "$out/$1.nn"; }
final() { grep '^final:' "$1" | sed 's/ seconds=.*//'; }
value() { grep '^final:' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

awk -v n=80 -v seed=1 -f "$here/make_img.awk" > "$out/img.csv"
awk -v n=40 -v seed=2 -f "$here/make_img.awk" > "$out/img_test.csv"
build full "$here/img.nn" || exit 1
cp -r "$out/full" "$out/split"

# ---- resume: 6 epochs == 3 + 3 resumed, bit for bit --------------------
(cd "$out/full" && ./full --save final.safetensors > run.log 2>&1) ||
    fail "img: the 6-epoch run failed: $(tail -2 "$out/full/run.log")"
(cd "$out/split" && ./full --epochs 3 > run1.log 2>&1 &&
    ./full --resume state.safetensors --save final.safetensors > run2.log 2>&1) ||
    fail "img: the run in two parts failed: $(tail -2 "$out/split/run2.log")"
if cmp -s "$out/full/final.safetensors" "$out/split/final.safetensors"; then ok
else fail "resume: the weights after 3 + 3 epochs differ from 6 epochs in one run"; fi
if [ "$(final "$out/full/run.log")" = "$(final "$out/split/run2.log")" ] &&
   [ -n "$(final "$out/full/run.log")" ]; then ok
else fail "resume: final lines differ: $(final "$out/full/run.log") / $(final "$out/split/run2.log")"; fi
if [ "$(cut -d, -f1-8 "$out/full/log.csv")" = "$(cut -d, -f1-8 "$out/split/log.csv")" ]; then ok
else fail "resume: the CSV logs differ"; fi
if grep -q "epochs 4 to 6 (resumed)" "$out/split/run2.log"; then ok
else fail "resume: no 'epochs 4 to 6 (resumed)' header"; fi
# a weights-only file cannot be resumed from; the state loads as weights
if ! (cd "$out/split" && ./full --resume final.safetensors > bad.log 2>&1) &&
   grep -q "error: final.safetensors: no \"nnc_seed\"" "$out/split/bad.log"; then ok
else fail "resume from a weights-only file: $(tail -1 "$out/split/bad.log")"; fi
if (cd "$out/split" && ./full --load state.safetensors --eval > eval.log 2>&1) &&
   [ "$(value test_loss "$out/split/eval.log")" = "$(value test_loss "$out/full/run.log")" ]
then ok; else fail "--load of a training state: $(tail -1 "$out/split/eval.log")"; fi
if (cd "$out/split" && ./full --load x --resume y > bad.log 2>&1); [ $? -eq 2 ]; then ok
else fail "--load with --resume is not a usage error"; fi

# ---- validation, figures, CSV log, confusion matrix ---------------------
log=$out/full/run.log
if grep -q "^img: 64 training samples, 16 validation and a test set, batch 8, 6 epochs$" "$log"
then ok; else fail "header: $(head -1 "$log")"; fi
if [ "$(grep -c '^epoch [1-6]/6  loss [0-9.]*  train_accuracy [0-9.]*  val_loss [0-9.]*  val_accuracy [0-9.]*  test_loss [0-9.]*  test_accuracy [0-9.]*  lr ' "$log")" = 6 ]
then ok; else fail "epoch lines: $(grep '^epoch 1/' "$log")"; fi
for k in loss train_accuracy test_loss test_accuracy val_loss val_accuracy eval_train_loss best_epoch; do
    [ -n "$(value $k "$log")" ] || { fail "final line has no $k: $(final "$log")"; continue; }
    ok
done
if [ "$(head -1 "$out/full/log.csv")" = "epoch,lr,loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy,seconds" ] &&
   [ "$(wc -l < "$out/full/log.csv")" = 7 ]; then ok
else fail "log.csv: $(head -2 "$out/full/log.csv")"; fi
# the confusion matrix counts every test sample once
n=$(sed -n '/^confusion matrix (test set/,/^final/p' "$log" | awk '$1 == "left" || $1 == "right" { s += $2 + $3 } END { print s }')
if [ "$n" = 40 ]; then ok; else fail "confusion matrix: $n samples, want 40"; fi
# the split is the seed's: same seed, same validation figures
(cd "$out/split" && ./full --epochs 1 --quiet --log-csv again.csv > /dev/null 2>&1)
if [ "$(sed -n 2p "$out/split/again.csv" | cut -d, -f1-6)" = "$(sed -n 2p "$out/full/log.csv" | cut -d, -f1-6)" ]
then ok; else fail "the same seed gives another epoch 1 (or --log-csv failed)"; fi
(cd "$out/split" && ./full --epochs 1 --quiet --seed 6 --log-csv other.csv > /dev/null 2>&1)
if [ "$(sed -n 2p "$out/split/other.csv" | cut -d, -f5)" != "$(sed -n 2p "$out/full/log.csv" | cut -d, -f5)" ]
then ok; else fail "another seed gives the same validation loss"; fi

# ---- checkpoint best(...): the best epoch's weights ----------------------
best=$(value best_epoch "$log")
want=$(awk -F, -v e="$best" 'NR == e + 1 { printf "%.4f", $6 }' "$out/full/log.csv")
(cd "$out/full" && ./full --load best.safetensors --eval > best.log 2>&1)
if [ -n "$want" ] && [ "$(value val_accuracy "$out/full/best.log")" = "$want" ]; then ok
else fail "best.safetensors evaluates val_accuracy=$(value val_accuracy "$out/full/best.log"), epoch $best had $want"; fi

# ---- early stopping ----------------------------------------------------
variant early 's/early_stopping .*/early_stopping val_loss(patience = 2, min_delta = 10)/'
if build early "$out/early.nn" && (cd "$out/early" && ./early > run.log 2>&1); then
    if [ "$(value epochs "$out/early/run.log")" = 3 ] &&
       grep -q "^early stopping: val_loss has not improved on [0-9.]* for 2 epochs" "$out/early/run.log"
    then ok; else fail "early stopping: $(grep -E '^(early|final)' "$out/early/run.log")"; fi
else fail "early: the run failed"; fi

# ---- freeze --------------------------------------------------------------
variant frozen 's/^    no_decay .*/    freeze conv1/'
if build frozen "$out/frozen.nn" &&
   (cd "$out/frozen" && ./frozen --eval --quiet --save init.safetensors > /dev/null 2>&1 &&
    ./frozen --quiet --save trained.safetensors > /dev/null 2>&1); then
    d=$out/frozen
    if r=$("$PYTHON" "$here/st_tool.py" same "$d/init.safetensors" "$d/trained.safetensors" conv1.weight conv1.bias) &&
       r=$("$PYTHON" "$here/st_tool.py" differ "$d/init.safetensors" "$d/trained.safetensors" fc1.weight fc2.bias)
    then ok; else fail "freeze conv1: $r"; fi
    if grep -q '__opt__.exp_avg.conv1' "$d/state.safetensors"; then
        fail "freeze: the frozen conv1 has optimizer state"
    else ok; fi
else fail "frozen: the runs failed"; fi

# ---- init_from: the weights of another model, by name -------------------
sed -e 's/^model img/model transfer/' -e 's/^train img/train transfer/' \
    -e 's/name = "fc2"/name = "head"/' \
    -e 's|^    no_decay .*|    init_from "../full/final.safetensors"; freeze [conv1, fc1]|' \
    "$here/img.nn" > "$out/transfer.nn"
if build transfer "$out/transfer.nn" &&
   (cd "$out/transfer" && ./transfer --eval --quiet --save start.safetensors > start.log 2>&1 &&
    ./transfer --quiet --save end.safetensors > end.log 2>&1); then
    d=$out/transfer
    if r=$("$PYTHON" "$here/st_tool.py" same "$out/full/final.safetensors" "$d/start.safetensors" conv1.weight conv1.bias fc1.weight fc1.bias) &&
       r=$("$PYTHON" "$here/st_tool.py" same "$out/full/final.safetensors" "$d/end.safetensors" conv1.weight fc1.bias) &&
       r=$("$PYTHON" "$here/st_tool.py" differ "$d/start.safetensors" "$d/end.safetensors" head.weight head.bias)
    then ok; else fail "init_from: $r"; fi
else fail "transfer: the runs failed: $(tail -1 "$out/transfer/start.log")"; fi
sed -e 's/conv2d(image, 3,/conv2d(image, 4,/' "$out/transfer.nn" > "$out/mismatch.nn"
if build mismatch "$out/mismatch.nn"; then
    if (cd "$out/mismatch" && ./mismatch --eval > run.log 2>&1); then
        fail "init_from with another shape was accepted"
    elif grep -q "conv1.weight: shape \[3, 1, 3, 3\] in file, model expects \[4, 1, 3, 3\]" "$out/mismatch/run.log"
    then ok; else fail "init_from shape mismatch: $(tail -1 "$out/mismatch/run.log")"; fi
fi

# ---- clipping and augmentation, on their own -----------------------------
d=$out/unit
mkdir -p "$d"
if "$NNC" --main --dtype f64 --prefix unit "$here/img.nn" -o "$d/unit.c" &&
   gcc $CFLAGS_GEN -I"$d" -o "$d/unit_driver" "$here/unit_driver.c" -lz -lm; then
    if r=$("$d/unit_driver" augment); then ok; echo "augment: $r"; else fail "augment: $r"; fi
    if "$PYTHON" -c 'import torch' 2>/dev/null; then
        for a in "0 1" "0.5 0" "0.5 2" "0 100"; do
            "$d/unit_driver" clip $a > "$d/clip.txt"
            if r=$("$PYTHON" "$here/clip_torch.py" $a "$d/clip.txt"); then
                ok; echo "clip value/norm $a: $r"
            else fail "clip value/norm $a: $r"; fi
        done
    else echo "skip: clipping against torch ($PYTHON cannot import torch)"; fi
else fail "unit_driver does not build"; fi

# ---- subnormals: flushed to zero unless --keep-subnormals ---------------
# every sample's first feature is 3e-39: flushed, it reads as 0, and so do
# the gradients and Adam moments of its weights (fc.weight[:, 0]); kept,
# they are tiny but not 0
if build sub "$here/subnormal.nn"; then
    for i in 1 2 3 4; do printf '3e-39,0.5,0\n3e-39,-0.5,1\n'; done > "$out/sub/subnormal.csv"
    for mode in flushed kept; do
        flag=; [ $mode = kept ] && flag=--keep-subnormals
        (cd "$out/sub" && ./sub --quiet $flag > $mode.log 2>&1 &&
            "$PYTHON" "$here/st_tool.py" print state.safetensors \
                __opt__.exp_avg.fc.weight > $mode.m) ||
            fail "subnormals, $mode: $(tail -2 "$out/sub/$mode.log")"
    done
    # fc.weight is [2, 2]: values 1 and 3 are column 0; zeros counts them
    zeros() { awk 'NR == 1 || NR == 3 { n += ($1 == 0) } END { print n + 0 }' "$1"; }
    if [ "$(wc -l < "$out/sub/flushed.m")" = 4 ] && [ "$(zeros "$out/sub/flushed.m")" = 2 ]; then ok
    else fail "subnormals flushed: Adam's moment of fc.weight is $(tr '\n' ' ' < "$out/sub/flushed.m")"; fi
    if [ "$(wc -l < "$out/sub/kept.m")" = 4 ] && [ "$(zeros "$out/sub/kept.m")" = 0 ]; then ok
    else fail "--keep-subnormals: Adam's moment of fc.weight is $(tr '\n' ' ' < "$out/sub/kept.m")"; fi
    if "$out/sub/sub" --help 2>&1 | grep -q -- "--keep-subnormals"; then ok
    else fail "--help does not name --keep-subnormals"; fi
fi

# ---- the command line --------------------------------------------------
t=$out/full/full
"$t" --frob > "$out/cli" 2>&1
if [ $? -eq 2 ] && grep -q "unknown option '--frob'" "$out/cli"; then ok
else fail "--frob last: $(cat "$out/cli")"; fi
"$t" --epochs > "$out/cli" 2>&1
if [ $? -eq 2 ] && grep -q -- "--epochs needs a value" "$out/cli"; then ok
else fail "--epochs without a value: $(cat "$out/cli")"; fi
"$t" --seed -1 > "$out/cli" 2>&1
if [ $? -eq 2 ] && grep -q -- "--seed expects an integer from 0 to" "$out/cli"; then ok
else fail "--seed -1: $(cat "$out/cli")"; fi
(cd "$out/full" && ./full --seed 0 --epochs 1 --quiet > ../cli 2>&1) && ok ||
    fail "--seed 0 refused: $(cat "$out/cli")"
(cd "$out/full" && ./full --load final.safetensors --eval > ../cli 2>&1)
if head -1 "$out/cli" | grep -q "evaluation only$" && [ "$(value epochs "$out/cli")" = 0 ]
then ok; else fail "--eval header: $(head -1 "$out/cli")"; fi
"$NNC" --main "$here/../../dsl-examples/xor.nn" -o "$out/xor.c" &&
    gcc $CFLAGS_GEN -o "$out/xor" "$out/xor.c" -lz -lm
"$out/xor" --data foo.csv > "$out/cli" 2>&1
if [ $? -eq 2 ] && grep -q -- "--data does not apply: the data of 'xor' is a table" "$out/cli"; then ok
else fail "--data with table data: $(cat "$out/cli")"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
