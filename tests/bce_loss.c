/* bce_loss.c — the bce loss kernel takes only the log a label of 0 or 1
 * weighs (compiler/lower.c, lower_pointwise_loss); its loss must have the
 * bits of PyTorch's expression with both logs, for every probability
 * (0 and 1 exactly, where the log is clamped at -100, values near them,
 * NaN) and for labels outside {0, 1}, which take both logs.
 *
 * The model (tests/bce_loss/bl.nn, prefix bl) is p = sigmoid(x * w); with
 * w = 1 the inputs choose p. The reference recomputes the loss from the
 * probabilities the model predicts, in the element type REAL (float or
 * double: -DREAL= the --dtype of the build). */
#include "bl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define N BL_BATCH
#define LOG(v) _Generic((REAL)0, float: logf, default: log)(v)
#define NEXT(from, to) _Generic((REAL)0, float: nextafterf, default: nextafter)(from, to)

/* PyTorch's binary cross-entropy: both logs, each clamped at -100 with a
 * compare that keeps a NaN, summed in double */
static REAL reference(const REAL *p, const REAL *t)
{
    double total = 0;
    for (int i = 0; i < N; i++) {
        const REAL lp = LOG(p[i]), lq = LOG(1 - p[i]);
        total -= t[i] * (lp < -100 ? -100.0 : (double)lp) +
                 (1 - (double)t[i]) * (lq < -100 ? -100.0 : (double)lq);
    }
    return (REAL)(total / N);
}

/* one batch: the model's loss against the reference on its own outputs */
static int check(bl *m, const char *what, const REAL *x, const REAL *t)
{
    REAL p[N];
    const REAL loss = bl_evaluate(m, x, t, p);
    const REAL want = reference(p, t);
    if (isnan(want) ? isnan(loss) : memcmp(&loss, &want, sizeof loss) == 0)
        return 0;
    fprintf(stderr, "%s: loss %.17g, expression %.17g\n", what, (double)loss, (double)want);
    return 1;
}

int main(void)
{
    bl *m = bl_new(1);
    if (!m)
        return 2;
    bl_params(m)[0] = 1;
    /* p = 1 exactly (x = 40 or more), 0 exactly (-120 in float, -800 in
     * double), p near 1 and 0, 0.5, and everything between */
    const REAL edges[N] = {40, 800, -120, -800, 16, -16, 0, 1e-7,
                           3, -3, 0.5, -0.5, 9, -9, 20, -20};
    REAL x[N], t[N];
    int bad = 0, batches = 0;
    for (int shift = 0; shift < N; shift++) {
        for (int i = 0; i < N; i++) {
            x[i] = edges[(i + shift) % N];
            t[i] = (REAL)((i + shift / 2) % 2); /* both labels at every p */
        }
        bad += check(m, "labels 0 and 1", x, t);
        /* soft labels take the other path, some of them next to hard ones */
        for (int i = 0; i < N; i += 3)
            t[i] = (REAL)0.25 * (REAL)(1 + i % 3);
        bad += check(m, "soft labels", x, t);
        batches += 2;
    }
    /* a label just inside (0, 1) is not 0 or 1: nextafter must not pass */
    for (int i = 0; i < N; i++) {
        x[i] = edges[i];
        t[i] = i % 2 ? NEXT((REAL)1, 0) : NEXT((REAL)0, 1);
    }
    bad += check(m, "labels next to 0 and 1", x, t);
    /* a NaN probability makes the loss NaN whatever the label */
    x[5] = (REAL)NAN;
    bad += check(m, "a NaN input, label next to 1", x, t);
    t[5] = 1;
    bad += check(m, "a NaN input, label 1", x, t);
    batches += 3;
    bl_free(m);
    printf("bce loss: %d of %d batches with the expression's bits\n", batches - bad, batches);
    return bad != 0;
}
