#!/bin/sh
# e2e.sh — every example compiles with nnc, its C compiles warning-free
# (with and without OpenMP, and with clang for this machine when clang
# is installed; the library and f64 forms are built by fusecheck.sh and
# exactcheck.sh), the small ones train to their targets, and
# the train-block examples run briefly on a small Fashion-MNIST
# (tests/make_idx.py) with their features checked.
# Set E2E_FULL=1 to also train mnist_mlp for its 5 epochs (slow).
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
CFLAGS_GEN="-std=c11 -O2 -Wall -Wextra -Werror $SANFLAGS"
out=${BUILD:-build}/e2e
mkdir -p "$out"
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# value KEY FILE: the value of KEY=... on the final: line
value() { grep '^final:' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# below A B: A < B as numbers
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

for nn in dsl-examples/*.nn; do
    name=$(basename "$nn" .nn)
    if ! "$NNC" --main "$nn" -o "$out/$name.c"; then
        fail "$nn: nnc failed"; continue
    fi
    ok
    if gcc $CFLAGS_GEN -fopenmp -o "$out/$name" "$out/$name.c" -lz -lm; then ok
    else fail "$name.c does not compile with -fopenmp"; fi
    # the library form (two_models below links two); fusecheck.sh and
    # exactcheck.sh build it, and the --dtype f64 form, with these flags
    if "$NNC" "$nn" -o "$out/${name}_lib.c"; then ok
    else fail "$name: nnc failed on the library form"; fi
    # Builds that only check warnings (the plain run's job) are left out
    # under the sanitizers, which build what runs: every trainer, and
    # xor without OpenMP as well
    if [ -n "$SANFLAGS" ] && [ "$name" != xor ]; then continue; fi
    if gcc $CFLAGS_GEN -o "$out/$name.noomp" "$out/$name.c" -lz -lm
    then ok; else fail "$name.c does not compile without OpenMP"; fi
    [ -n "$SANFLAGS" ] && continue
    # clang, for the vector code of this machine (its intrinsics, the
    # transposes, the pragmas for clang); without OpenMP, whose header
    # clang finds only with libomp-dev
    if command -v clang > /dev/null; then
        if clang -std=c11 -O2 -march=native -Wall -Wextra -Werror \
                -c -o "$out/$name.clang.o" "$out/$name.c"; then ok
        else fail "$name.c does not compile with clang -march=native"; fi
    fi
done

# XOR (the seed's SimpleNet): all four points right, final loss < 0.05.
if "$out/xor" --quiet > "$out/xor.log" 2>&1; then
    loss=$(value loss "$out/xor.log"); acc=$(value train_accuracy "$out/xor.log")
    if below "$loss" 0.05 && [ "$acc" = "1.0000" ]; then ok
    else fail "xor: loss=$loss train_accuracy=$acc (want < 0.05 and 1.0000)"; fi
else fail "xor trainer failed: $(tail -3 "$out/xor.log")"; fi

# The same run without OpenMP gives the same final line (determinism).
"$out/xor.noomp" --quiet > "$out/xor.noomp.log" 2>&1
if [ "$(grep final: "$out/xor.log" | sed 's/ seconds=.*//')" = \
     "$(grep final: "$out/xor.noomp.log" | sed 's/ seconds=.*//')" ]; then ok
else fail "xor: results differ with and without OpenMP"; fi

# A single layer cannot learn XOR: accuracy stays at or below 0.75.
if "$out/single_layer" --quiet > "$out/single.log" 2>&1; then
    acc=$(value train_accuracy "$out/single.log")
    if below "$acc" 0.76; then ok
    else fail "single_layer learnt XOR?! train_accuracy=$acc"; fi
else fail "single_layer trainer failed"; fi

# Keras' XOR with Adam trains and reports accuracy.
if "$out/xor_keras" --quiet > "$out/keras.log" 2>&1 &&
   [ -n "$(value train_accuracy "$out/keras.log")" ]; then ok
else fail "xor_keras trainer failed"; fi

# Checkpoints: --save then --load --eval reproduces the evaluation.
if "$out/xor" --quiet --save "$out/xor.safetensors" > /dev/null 2>&1 &&
   "$out/xor" --quiet --load "$out/xor.safetensors" --eval > "$out/xor.eval" 2>&1
then
    a=$(value eval_train_loss "$out/xor.log"); b=$(value eval_train_loss "$out/xor.eval")
    if [ "$a" = "$b" ]; then ok; else fail "xor: loaded model evaluates $b, saved $a"; fi
else fail "xor: --save/--load failed"; fi

# Logits of +-1000 through every score-taking loss, fused and unfused.
for flags in "" --no-fuse; do
    d="$out/stable$flags"; mkdir -p "$d"
    if "$NNC" $flags --prefix st tests/stable/stable.nn -o "$d/st.c" &&
       gcc $CFLAGS_GEN -I"$d" -o "$d/s" tests/stable.c "$d/st.c" -lm && "$d/s"
    then ok; else fail "losses overflow for logits of +-1000 ($flags)"; fi
done

# SIGKILL in the middle of checkpoint writes never leaves a broken file.
d="$out/kill_save"; rm -rf "$d"; mkdir -p "$d"
if "$NNC" --prefix ks dsl-examples/mnist_mlp.nn -o "$d/ks.c" &&
   gcc $CFLAGS_GEN -I"$d" -o "$d/kill" tests/kill_save.c "$d/ks.c" -lm && "$d/kill" "$d"
then ok; else fail "checkpoint writes are not atomic under SIGKILL"; fi

# A corrupt checkpoint is refused with a message naming the file.
printf 'garbage' > "$out/bad.safetensors"
if "$out/xor" --load "$out/bad.safetensors" --eval > "$out/bad.log" 2>&1; then
    fail "xor accepted a corrupt checkpoint"
elif grep -q "bad.safetensors" "$out/bad.log"; then ok
else fail "xor: corrupt checkpoint message does not name the file"; fi

# Bad options are usage errors (status 2).
"$out/xor" --epochs banana > /dev/null 2>&1
if [ $? -eq 2 ]; then ok; else fail "xor --epochs banana is not a usage error"; fi

# --bench prints the contract line.
if "$out/xor" --bench 100 | grep -Eq '^bench: steps=100 ms_per_step=[0-9.]+ samples_per_s=[0-9]+$'
then ok; else fail "xor --bench output"; fi

# Two models in one program: no clashing symbols, no shared state.
if gcc $CFLAGS_GEN -fopenmp -I"$out" -o "$out/two_models" tests/two_models.c \
       "$out/xor_lib.c" "$out/mnist_mlp_lib.c" -lm && "$out/two_models"; then ok
else fail "two models in one program"; fi

# Training vs evaluation mode: dropout and batch norm.
for name in dropout_net bn_net; do
    d="$out/modes_$name"; mkdir -p "$d"
    if "$NNC" --prefix md "dsl-examples/$name.nn" -o "$d/md.c" &&
       gcc $CFLAGS_GEN -fopenmp -I"$d" -DMD_NAME="\"$name\"" -o "$d/modes" \
           tests/modes.c "$d/md.c" -lm && "$d/modes"; then ok
    else fail "$name: evaluation mode is not deterministic or equals training mode"; fi
done

# CIFAR-10's binary format, on a small set made here (CIFAR-10 itself is
# not in Debian): trains, reports per-class accuracy with class names.
cifar="$out/cifar-bin"
if /usr/bin/python3 tests/make_cifar.py "$cifar" 40 &&
   "$out/cifar_cnn" --epochs 1 --data "$cifar" > "$out/cifar.log" 2>&1 &&
   grep -q "plane" "$out/cifar.log" && grep -q '^final:.*test_accuracy=' "$out/cifar.log"
then ok; else fail "cifar_cnn on CIFAR-format data: $(tail -3 "$out/cifar.log")"; fi
# A truncated batch is refused with the file's name.
head -c 5000 "$cifar/data_batch_2.bin" > "$out/trunc.bin" && mv "$out/trunc.bin" "$cifar/data_batch_2.bin"
if "$out/cifar_cnn" --quiet --epochs 1 --data "$cifar" > "$out/cifar_bad.log" 2>&1; then
    fail "cifar_cnn accepted a truncated data_batch_2.bin"
elif grep -q "data_batch_2.bin" "$out/cifar_bad.log"; then ok
else fail "truncated CIFAR file: message does not name it: $(cat "$out/cifar_bad.log")"; fi

# epoch_lrs LOG: "epoch lr" per epoch line of a trainer's output
epoch_lrs() {
    sed -n 's|^epoch \([0-9]*\)/.*  lr \([0-9.e-]*\)  .*|\1 \2|p' "$1"
}

# train_examples DIR: short runs of the train-block examples on the IDX
# data in DIR, each in a directory of its own (they write files there)
train_examples() {
    d="$(cd "$out" && pwd)/runs"; rm -rf "$d"; mkdir -p "$d"
    set -- "$(cd "$1" && pwd)"
    # in DIR, one thread: a few hundred samples per epoch are too little
    # work for two threads on a busy machine
    in_runs() { (cd "$d" && OMP_NUM_THREADS=1 "$@"); }
    # early_stopping: up to 100 epochs, but early stopping ends it; StepLR
    # gives lr 0.1 for epochs 1-30, then 0.01
    log="$d/early_stopping.log"
    if in_runs ../early_stopping --data "$1" > "$log" 2>&1 &&
       grep -q '^early stopping: val_loss has not improved on [0-9.]* for 5 epochs$' "$log"
    then
        n=$(value epochs "$log")
        bad=$(epoch_lrs "$log" | awk '($1 <= 30 && $2 != 0.1) || ($1 > 30 && $2 != 0.01)')
        if below "$n" 100 && [ -n "$n" ] && [ -z "$bad" ]; then ok
        else fail "early_stopping: $n epochs, or lr not StepLR's: $bad"; fi
    else fail "early_stopping did not stop early: $(tail -2 "$log")"; fi
    # transfer starts from train_model's best checkpoint: refused before
    # there is one, then train_model writes it and transfer trains
    if in_runs ../transfer --epochs 1 --data "$1" > "$d/transfer0.log" 2>&1; then
        fail "transfer ran without best_model.safetensors"
    elif grep -q 'best_model.safetensors' "$d/transfer0.log"; then ok
    else fail "transfer without its checkpoint: $(tail -1 "$d/transfer0.log")"; fi
    # --bench times synthetic steps: it needs no init_from file
    if in_runs ../transfer --bench 2 2> "$d/transfer_bench.err" | grep -q '^bench: steps=2 '; then ok
    else fail "transfer --bench without its checkpoint: $(tail -1 "$d/transfer_bench.err")"; fi
    if in_runs ../train_model --epochs 1 --data "$1" > "$d/train_model.log" 2>&1 &&
       grep -q '^best: epoch 1 val_accuracy [0-9.]*, saved best_model.safetensors$' \
            "$d/train_model.log" && [ -s "$d/best_model.safetensors" ] &&
       [ "$(value best_epoch "$d/train_model.log")" = 1 ]; then ok
    else fail "train_model: $(tail -2 "$d/train_model.log")"; fi
    if in_runs ../transfer --epochs 1 --data "$1" > "$d/transfer.log" 2>&1 &&
       [ -n "$(value test_accuracy "$d/transfer.log")" ]; then ok
    else fail "transfer from train_model's checkpoint: $(tail -2 "$d/transfer.log")"; fi
    # regularised: 2 epochs, CSV log and reports; then 1 + 1 resumed
    # epochs end with the same final line
    log="$d/regularised.log"
    if in_runs ../regularised --epochs 2 --data "$1" > "$log" 2>&1 &&
       [ "$(wc -l < "$d/regularised.csv")" = 3 ] &&
       grep -q '^  Ankle boot  ' "$log" && grep -q '^confusion matrix' "$log"
    then ok; else fail "regularised: $(tail -2 "$log")"; fi
    if in_runs ../regularised --quiet --epochs 1 --data "$1" > "$d/r1.log" 2>&1 &&
       in_runs ../regularised --quiet --epochs 2 --data "$1" \
            --resume regularised_state.safetensors > "$d/r2.log" 2>&1 &&
       [ "$(grep final: "$log" | sed 's/ seconds=.*//')" = \
         "$(grep final: "$d/r2.log" | sed 's/ seconds=.*//')" ]; then ok
    else fail "regularised: 1 + 1 resumed epochs differ from 2: $(tail -1 "$d/r2.log")"; fi
    # rmsprop, 6 of its epochs: MultiStepLR's lr 0.001, then 0.0003 from
    # epoch 5
    log="$d/rmsprop.log"
    if in_runs ../rmsprop --epochs 6 --data "$1" > "$log" 2>&1; then
        lrs=$(epoch_lrs "$log" | awk '{ printf "%s ", $2 }')
        if [ "$lrs" = "0.001 0.001 0.001 0.001 0.0003 0.0003 " ]; then ok
        else fail "rmsprop: learning rates $lrs"; fi
    else fail "rmsprop: $(tail -2 "$log")"; fi
}

# Fashion-MNIST, one epoch of the MLP (the full 5 with E2E_FULL=1).
data=/usr/share/datasets/fashion-mnist
if [ -e "$data/train-images-idx3-ubyte.gz" ]; then
    epochs=1; want=0.80
    if [ "${E2E_FULL:-0}" = 1 ]; then epochs=5; want=0.86; fi
    if "$out/mnist_mlp" --quiet --epochs $epochs > "$out/mlp.log" 2>&1; then
        acc=$(value test_accuracy "$out/mlp.log")
        if below "$want" "$acc"; then ok
        else fail "mnist_mlp: test_accuracy=$acc after $epochs epochs (want > $want)"; fi
    else fail "mnist_mlp trainer failed: $(tail -3 "$out/mlp.log")"; fi
    cat "$out/mlp.log"

    # The train-block examples on the first 500 training and 100 test
    # images: the seed's early stopping and StepLR, its train_model loop,
    # transfer learning from that loop's best checkpoint, regularisation
    # and reports, RMSprop with clipping by value.
    small="$out/fashion-small"; rm -rf "$small"
    if /usr/bin/python3 tests/make_idx.py "$data" "$small" 500 100; then
        train_examples "$small"
    else fail "tests/make_idx.py could not make a small Fashion-MNIST"; fi
else
    echo "skip: $data not installed (apt-get install dataset-fashion-mnist)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
