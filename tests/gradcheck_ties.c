/* gradcheck_ties.c — one gradient of a model at points where finite
 * differences say nothing: every parameter is drawn from {-1, -1/2, 0,
 * 1/2, 1} and every input from {-1, 0, 1}, so the sums of the
 * convolutions and dense layers are exact in double precision and
 * often equal: relu inputs are exactly 0 and max-pooling windows hold
 * several equal maxima. tests/gradcheck_ties.py repeats the step in
 * PyTorch and compares, which checks that nnc takes PyTorch's side at
 * each such point (relu: gradient 0 at 0; leaky relu: alpha at 0;
 * max pooling: the window's first maximum in row-major order).
 *
 * Built by tests/gradcheck_random.sh against a model compiled with
 * `nnc --dtype f64 --prefix ties`. Usage: ties SEED; writes, in the
 * current directory, w.safetensors (the weights), x.bin and y.bin (the
 * batch, doubles, or int32 class labels) and nnc.txt (the loss, then the
 * gradient block, one number per line). */
#include "ties.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef TIES_CLASSES
typedef int32_t label_t;
#else
typedef double label_t;
#endif

static double next_uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

/* one of the n numbers lo, lo + step, ... */
static double grid(uint64_t *s, double lo, double step, int n)
{
    return lo + step * (int)(next_uniform(s) * n);
}

static int write_all(const char *path, const void *p, size_t size)
{
    FILE *f = fopen(path, "wb");
    return f && fwrite(p, size, 1, f) == 1 && fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static double x[TIES_BATCH * TIES_INPUT_SIZE];
    static label_t y[TIES_BATCH * TIES_LABEL_SIZE];
    uint64_t s = argc > 1 ? strtoull(argv[1], NULL, 10) * 2654435761u + 1 : 1;
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = grid(&s, -1, 1, 3);
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++) {
#ifdef TIES_CLASSES
        y[i] = (label_t)(next_uniform(&s) * TIES_CLASSES);
#else
        y[i] = grid(&s, 0.125, 0.25, 4); /* a probability, for bce */
#endif
    }
    ties *m = ties_new(1);
    if (!m)
        return 2;
    double *w = ties_params(m);
    for (long i = 0; i < TIES_PARAM_COUNT; i++)
        w[i] = grid(&s, -1, 0.5, 5);
    if (ties_save(m, "w.safetensors") || write_all("x.bin", x, sizeof x) ||
        write_all("y.bin", y, sizeof y)) {
        fprintf(stderr, "ties: cannot write the files: %s\n", ties_error(m));
        return 2;
    }
    double loss = ties_compute_gradients(m, x, y);
    FILE *f = fopen("nnc.txt", "w");
    if (!f)
        return 2;
    fprintf(f, "%.17g\n", loss);
    for (long i = 0; i < TIES_PARAM_COUNT; i++)
        fprintf(f, "%.17g\n", ties_grads(m)[i]);
    ties_free(m);
    return fclose(f) ? 2 : 0;
}
