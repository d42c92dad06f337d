/* nonfinite.c — the library API on NaN and infinity. Built by
 * tests/nonfinite.sh against tests/nonfinite/diverge.nn compiled with
 * --prefix nf (a dense layer "o", MSE, SGD), fused and --no-fuse:
 *   - a batch holding an infinity: train_step returns NaN, takes no step,
 *     leaves every parameter as it was and names "the input batch";
 *   - _gradients_finite and _find_nonfinite agree with that, and with a
 *     finite batch;
 *   - a finite loss whose weight gradient is an infinity (the products
 *     of weight gradients test what they store, lower_gemm.c): no step,
 *     and the gradient named;
 *   - a parameter set to NaN is named by _find_nonfinite, and _save and
 *     _save_training refuse to write it (the file is not created).
 * Prints one line per failed check; exit status 1 if any failed. */
#define _POSIX_C_SOURCE 200809L
#include "nf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int failures;

static void check(int ok, const char *what, const nf *m)
{
    if (!ok) {
        printf("FAIL %s (error: \"%s\")\n", what, nf_error(m));
        failures++;
    }
}

static int has(const nf *m, const char *text)
{
    return strstr(nf_error(m), text) != NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/nan.safetensors", argv[1]);
    unlink(path);
    float x[NF_BATCH * NF_INPUT_SIZE], y[NF_BATCH * NF_LABEL_SIZE];
    for (int i = 0; i < NF_BATCH * NF_INPUT_SIZE; i++)
        x[i] = (float)(i % 3) - 1.0f;
    for (int i = 0; i < NF_BATCH * NF_LABEL_SIZE; i++)
        y[i] = 0.5f * (float)i;
    nf *m = nf_new(1);
    if (!m)
        return 1;
    float before[NF_PARAM_COUNT];

    float loss = nf_train_step(m, x, y);
    check(isfinite(loss) && nf_steps(m) == 1, "a finite step is taken", m);
    check(nf_gradients_finite(m) == 1, "finite gradients are finite", m);
    check(nf_find_nonfinite(m, x, y) == 0 && nf_error(m)[0] == '\0',
          "find_nonfinite finds nothing in a finite batch", m);

    memcpy(before, nf_params(m), sizeof before);
    x[1] = INFINITY;
    loss = nf_train_step(m, x, y);
    check(isnan(loss), "train_step returns NaN for an infinite input", m);
    check(nf_steps(m) == 1, "the step is not counted", m);
    check(memcmp(before, nf_params(m), sizeof before) == 0,
          "the parameters are unchanged", m);
    check(has(m, "the input batch"), "the input batch is named", m);
    nf_compute_gradients(m, x, y);
    check(nf_gradients_finite(m) == 0, "gradients_finite sees it", m);
    check(nf_find_nonfinite(m, x, y) == -1 && has(m, "the input batch"),
          "find_nonfinite names the input batch", m);

    x[1] = 0.0f;
    /* a finite loss whose weight gradient overflows: o.weight's second
     * column is 0, so the second input (3e38) does not reach the output,
     * but its gradient, (o - y) * 3e38 summed over the batch, is an
     * infinity. The product that computes it tests what it stores, and
     * the step must not be taken. */
    nf_params(m)[1] = 0.0f; /* o.weight[0][1] */
    float big_x[NF_BATCH * NF_INPUT_SIZE], big_y[NF_BATCH * NF_LABEL_SIZE];
    for (int s = 0; s < NF_BATCH; s++) {
        big_x[s * NF_INPUT_SIZE] = 1.0f;
        big_x[s * NF_INPUT_SIZE + 1] = 3e38f;
        big_y[s] = -1000.0f;
    }
    memcpy(before, nf_params(m), sizeof before);
    loss = nf_compute_gradients(m, big_x, big_y);
    check(isfinite(loss), "the loss is finite", m);
    check(isinf(nf_grads(m)[1]), "o.weight's gradient overflows", m);
    check(nf_gradients_finite(m) == 0,
          "gradients_finite sees an infinite weight gradient", m);
    long steps = nf_steps(m);
    loss = nf_train_step(m, big_x, big_y);
    check(isnan(loss) && nf_steps(m) == steps &&
              memcmp(before, nf_params(m), sizeof before) == 0,
          "train_step takes no step on an infinite weight gradient", m);
    check(has(m, "o.weight"), "the weight gradient is named", m);
    loss = nf_compute_gradients(m, x, y);
    check(isfinite(loss) && nf_gradients_finite(m) == 1,
          "the next finite batch's gradients are finite again", m);

    nf_params(m)[NF_PARAM_COUNT - 1] = NAN; /* o.bias */
    check(nf_find_nonfinite(m, x, y) == -1 && has(m, "o.bias (a parameter"),
          "find_nonfinite names the parameter o.bias", m);
    check(nf_save(m, path) == -1 && has(m, "o.bias") && access(path, F_OK) != 0,
          "save refuses a NaN parameter and writes nothing", m);
    check(nf_save_training(m, path, NULL) == -1 && has(m, "o.bias") &&
              access(path, F_OK) != 0,
          "save_training refuses a NaN parameter and writes nothing", m);
    nf_free(m);
    printf("nonfinite API: %d failures\n", failures);
    return failures ? 1 : 0;
}
