/* gradcheck.c — compares a generated model's gradients with central
 * finite differences of its loss, in double precision.
 *
 * Built once per model by tests/gradcheck.sh, from the model's
 * `nnc --dtype f64` output, with
 *   -DGC_PREFIX=name -DGC_UPPER=NAME -DGC_HEADER='"name.h"' [-DGC_CLASSES]
 * Every parameter element is checked (or an evenly spaced sample of
 * about 300 when there are more). With eps = 1e-6 an element passes when
 *   |analytic - numeric| <= 1e-6 * max(|analytic|, |numeric|, 1e-3)
 * i.e. relative error below 1e-6, or absolute error below 1e-9 for
 * gradients under 1e-3: there the rounding of the loss itself (about
 * 1e-16 * loss / eps = 1e-10 and up) is what a central difference
 * measures, not the gradient. */
#include GC_HEADER

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(f) CAT(GC_PREFIX, CAT(_, f))
#define K(s) CAT(GC_UPPER, CAT(_, s))

#ifdef GC_CLASSES
typedef int32_t label_t;
#else
typedef double label_t;
#endif

enum { MAX_CHECKED = 300 };

/* A small deterministic generator, independent of the model's own. */
static double next_uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

int main(void)
{
    static double x[K(BATCH) * K(INPUT_SIZE)];
    static label_t y[K(BATCH) * K(LABEL_SIZE)];
    uint64_t s = 12345;
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = 2 * next_uniform(&s) - 1;
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++) {
#ifdef GC_CLASSES
        y[i] = (label_t)(next_uniform(&s) * K(CLASSES));
#else
        y[i] = 0.05 + 0.9 * next_uniform(&s); /* a probability for bce */
#endif
    }
    GC_PREFIX *m = FN(new)(7);
    if (!m)
        return 2;
    double *w = FN(params)(m);
    long n = K(PARAM_COUNT);
    double *analytic = malloc(sizeof(double) * (size_t)n);
    if (!analytic)
        return 2;
    double loss = FN(compute_gradients)(m, x, y);
    memcpy(analytic, FN(grads)(m), sizeof(double) * (size_t)n);
    const double h = 1e-6;
    long stride = n > MAX_CHECKED ? n / MAX_CHECKED : 1, checked = 0, bad = 0;
    double worst = 0;
    for (long i = 0; i < n; i += stride) {
        double saved = w[i];
        w[i] = saved + h;
        double up = FN(compute_gradients)(m, x, y);
        w[i] = saved - h;
        double down = FN(compute_gradients)(m, x, y);
        w[i] = saved;
        double numeric = (up - down) / (2 * h);
        double scale = fmax(fmax(fabs(analytic[i]), fabs(numeric)), 1e-3);
        double err = fabs(analytic[i] - numeric) / scale;
        worst = fmax(worst, err);
        checked++;
        if (err > 1e-6) {
            if (bad < 5)
                fprintf(stderr, "param %ld: analytic %.12g numeric %.12g "
                        "(relative error %.3g)\n", i, analytic[i], numeric, err);
            bad++;
        }
    }
    printf("%s: loss %.6f, %ld of %ld parameters checked, worst relative "
           "error %.3g, %ld above 1e-6\n", GC_NAME, loss, checked,
           n, worst, bad);
    free(analytic);
    FN(free)(m);
    return bad ? 1 : 0;
}
