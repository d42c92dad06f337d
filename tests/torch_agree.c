/* torch_agree.c — the C side of the PyTorch agreement test.
 *
 * Compiled once per model against that model's generated code, which must
 * be emitted with `nnc --prefix agree` (so this file names agree_* and
 * AGREE_*, whatever the model is called):
 *
 *     nnc --prefix agree dsl-examples/xor.nn -o DIR/agree.c
 *     gcc -std=c11 -O2 -Wall -Wextra -Werror -fopenmp -IDIR \
 *         tests/torch_agree.c DIR/agree.c -lm -o DIR/driver
 *     DIR/driver OUTDIR
 *
 * It writes into OUTDIR everything the Python reference
 * (tests/torch_ref/MODEL.py) needs; all raw files are little-endian, one
 * value after the other, row-major:
 *
 *   meta.txt           key=value lines: batch, input_size, output_size,
 *                      label_size, classes (0 for real-valued labels),
 *                      param_count, batches, train_steps, seed
 *   x.f32              batches x batch x input_size inputs, uniform in [0, 1)
 *   y.i32 | y.f32      batches x batch labels: classes in [0, classes), or
 *                      batches x batch x label_size targets, each 0 or 1
 *   init.safetensors   the weights of agree_new(SEED), written by agree_save
 *   params0.f32        agree_params() of that model, raw (param_count)
 *   predict0.f32       agree_predict on batch 0 (evaluation mode)
 *   evalloss0.f32      agree_evaluate on batch 0 (evaluation-mode loss), 1 float
 *   loss0.f32          agree_compute_gradients on batch 0 (training mode), 1 float
 *   trainout0.f32      agree_train_output() after that call
 *   grads0.f32         agree_grads() after that call, raw (param_count)
 *   losses.f32         the losses of agree_train_step on batches 0..train_steps-1,
 *                      run on a fresh agree_new(SEED)
 *   trainouts.f32      agree_train_output() after each of those steps
 *   stepgrads.f32      agree_grads() after each of those steps (train_steps x
 *                      param_count): the gradients each step applied
 *   final.safetensors  the weights after those steps, written by agree_save
 *   params20.f32       agree_params() after those steps, raw
 *   predict20.f32      agree_predict on batch 0 after those steps
 *
 * The batches come from a fixed xorshift64* stream, so every run and
 * every platform sees the same data. Exit status 0 on success, 1 with a
 * message on stderr otherwise.
 */
#include "agree.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SEED = 20240611, BATCHES = 20, TRAIN_STEPS = 20 };

#ifdef AGREE_CLASSES
typedef int32_t label_t;
#define LABEL_FILE "y.i32"
#define LABELS_PER_SAMPLE 1
#else
typedef float label_t;
#define LABEL_FILE "y.f32"
#define LABELS_PER_SAMPLE AGREE_LABEL_SIZE
#endif

static const char *outdir;

/* xorshift64*: a small, fixed generator for the test data. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng_next(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

/* Uniform in [0, 1) with 24 random bits: exact in float. */
static float rng_uniform(void) {
    return (float)(rng_next() >> 40) * (1.0f / 16777216.0f);
}

static void path_of(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", outdir, name);
}

/* Writes n values of `size` bytes each, in the host's byte order (checked
 * to be little-endian in main). */
static int write_raw(const char *name, const void *data, size_t size, size_t n) {
    char path[4096];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t wrote = n ? fwrite(data, size, n, f) : 0;
    if (fclose(f) != 0 || wrote != n) {
        fprintf(stderr, "%s: write failed\n", path);
        return -1;
    }
    return 0;
}

static int save(agree *m, const char *name) {
    char path[4096];
    path_of(path, sizeof path, name);
    if (agree_save(m, path) != 0) {
        fprintf(stderr, "agree_save %s: %s\n", path, agree_error(m));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 1;
    }
    outdir = argv[1];
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe != 1) {
        fprintf(stderr, "this test writes raw little-endian files: big-endian hosts are not supported\n");
        return 1;
    }

    const size_t in_per_batch = (size_t)AGREE_BATCH * AGREE_INPUT_SIZE;
    const size_t lab_per_batch = (size_t)AGREE_BATCH * LABELS_PER_SAMPLE;
    const size_t out_per_batch = (size_t)AGREE_BATCH * AGREE_OUTPUT_SIZE;
    float *x = malloc(sizeof(float) * in_per_batch * BATCHES);
    label_t *y = malloc(sizeof(label_t) * lab_per_batch * BATCHES);
    float *out = malloc(sizeof(float) * out_per_batch);
    float *trainouts = malloc(sizeof(float) * out_per_batch * TRAIN_STEPS);
    float *params0 = malloc(sizeof(float) * AGREE_PARAM_COUNT);
    float losses[TRAIN_STEPS];
    agree *m = agree_new(SEED);
    agree *t = agree_new(SEED);
    int status = 1;
    if (!x || !y || !out || !trainouts || !params0 || !m || !t) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }

    /* The data: all inputs of a batch, then its labels, batch after batch. */
    for (int b = 0; b < BATCHES; b++) {
        for (size_t i = 0; i < in_per_batch; i++) {
            x[b * in_per_batch + i] = rng_uniform();
        }
        for (size_t i = 0; i < lab_per_batch; i++) {
#ifdef AGREE_CLASSES
            y[b * lab_per_batch + i] = (int32_t)(rng_next() % AGREE_CLASSES);
#else
            y[b * lab_per_batch + i] = (rng_next() >> 63) ? 1.0f : 0.0f;
#endif
        }
    }

    char meta[512];
    int len = snprintf(meta, sizeof meta,
                       "batch=%d\ninput_size=%d\noutput_size=%d\nlabel_size=%d\nclasses=%d\n"
                       "param_count=%ld\nbatches=%d\ntrain_steps=%d\nseed=%d\n",
                       AGREE_BATCH, AGREE_INPUT_SIZE, AGREE_OUTPUT_SIZE, AGREE_LABEL_SIZE,
#ifdef AGREE_CLASSES
                       AGREE_CLASSES,
#else
                       0,
#endif
                       (long)AGREE_PARAM_COUNT, BATCHES, TRAIN_STEPS, SEED);
    if (write_raw("meta.txt", meta, 1, (size_t)len) || write_raw("x.f32", x, sizeof(float), in_per_batch * BATCHES) ||
        write_raw(LABEL_FILE, y, sizeof(label_t), lab_per_batch * BATCHES)) {
        goto done;
    }

    /* The initial model: its weights, outputs, loss and gradients on batch 0. */
    memcpy(params0, agree_params(m), sizeof(float) * AGREE_PARAM_COUNT);
    if (save(m, "init.safetensors") || write_raw("params0.f32", agree_params(m), sizeof(float), AGREE_PARAM_COUNT)) {
        goto done;
    }
    agree_predict(m, x, AGREE_BATCH, out);
    if (write_raw("predict0.f32", out, sizeof(float), out_per_batch)) {
        goto done;
    }
    float loss = agree_evaluate(m, x, y, NULL);
    if (write_raw("evalloss0.f32", &loss, sizeof loss, 1)) {
        goto done;
    }
    loss = agree_compute_gradients(m, x, y);
    if (loss != loss) {
        fprintf(stderr, "agree_compute_gradients: NaN loss: %s\n", agree_error(m));
        goto done;
    }
    if (write_raw("loss0.f32", &loss, sizeof loss, 1) ||
        write_raw("trainout0.f32", agree_train_output(m), sizeof(float), out_per_batch) ||
        write_raw("grads0.f32", agree_grads(m), sizeof(float), AGREE_PARAM_COUNT)) {
        goto done;
    }

    /* A fresh model with the same seed, trained TRAIN_STEPS steps. */
    if (memcmp(agree_params(t), params0, sizeof(float) * AGREE_PARAM_COUNT) != 0) {
        fprintf(stderr, "agree_new(%d) gave different weights the second time\n", SEED);
        goto done;
    }
    char path[4096];
    path_of(path, sizeof path, "stepgrads.f32");
    FILE *stepgrads = fopen(path, "wb");
    if (!stepgrads) {
        perror(path);
        goto done;
    }
    for (int s = 0; s < TRAIN_STEPS; s++) {
        const int b = s % BATCHES;
        losses[s] = agree_train_step(t, x + b * in_per_batch, y + b * lab_per_batch);
        if (losses[s] != losses[s]) {
            fprintf(stderr, "agree_train_step %d: NaN loss: %s\n", s, agree_error(t));
            goto done;
        }
        memcpy(trainouts + s * out_per_batch, agree_train_output(t), sizeof(float) * out_per_batch);
        if (fwrite(agree_grads(t), sizeof(float), AGREE_PARAM_COUNT, stepgrads) != AGREE_PARAM_COUNT) {
            fprintf(stderr, "%s: write failed\n", path);
            fclose(stepgrads);
            goto done;
        }
    }
    if (fclose(stepgrads) != 0) {
        fprintf(stderr, "%s: write failed\n", path);
        goto done;
    }
    if (write_raw("losses.f32", losses, sizeof(float), TRAIN_STEPS) ||
        write_raw("trainouts.f32", trainouts, sizeof(float), out_per_batch * TRAIN_STEPS) ||
        save(t, "final.safetensors") ||
        write_raw("params20.f32", agree_params(t), sizeof(float), AGREE_PARAM_COUNT)) {
        goto done;
    }
    agree_predict(t, x, AGREE_BATCH, out);
    if (write_raw("predict20.f32", out, sizeof(float), out_per_batch)) {
        goto done;
    }
    status = 0;

done:
    agree_free(m);
    agree_free(t);
    free(x);
    free(y);
    free(out);
    free(trainouts);
    free(params0);
    return status;
}
