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
 * measures, not the gradient. A loss above 1 (logits in the hundreds
 * give losses in the hundreds) raises that floor in proportion: 1e-3
 * becomes 1e-3 * |loss|. Both are stricter than PyTorch's gradcheck
 * (|analytic - numeric| <= 1e-5 + 1e-3 |numeric|).
 *
 * A relu or a max-pool decision within eps of its boundary puts a kink
 * in the loss between w - eps and w + eps, and the central difference
 * then averages two slopes. On a failing element the loss is also taken
 * at w +- 2 eps: when the two first differences on one side agree and
 * the two on the other side do not (by a factor of 10), the kink is on
 * that other side, and the element passes if the analytic gradient
 * matches the second-order one-sided difference of the smooth side,
 *   (3 L(w) - 4 L(w - eps) + L(w - 2 eps)) / (2 eps)   or its mirror,
 * to the same 1e-6. Whether a side is smooth is a property of the loss
 * alone, so a wrong analytic gradient still fails; an input exactly at
 * a kink (relu at 0, ties in max-pooling) is not for finite differences
 * at all: tests/gradcheck_ties.py compares those with PyTorch.
 *
 * -DGC_SEED=N changes the random inputs and labels (default 12345);
 * -DGC_FLOOR=F replaces the 1e-3 above. tests/gradcheck_random.sh uses
 * 1e-2 (absolute errors to 1e-8 below gradients of 1e-2): its deeper
 * models, batch norm over a few values among them, carry rounding of
 * about 1e-15 of the loss, which reaches 8e-10 in a central difference
 * (seeds 47 and 48, with gradients near 1e-3 and 1e-6). */
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
#ifndef GC_SEED
#define GC_SEED 12345
#endif
    uint64_t s = GC_SEED;
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
    /* below this a difference measures the rounding of the loss */
#ifndef GC_FLOOR
#define GC_FLOOR 1e-3
#endif
    const double small = GC_FLOOR * fmax(1, fabs(loss));
    long stride = n > MAX_CHECKED ? n / MAX_CHECKED : 1, checked = 0, bad = 0, kinks = 0;
    double worst = 0;
    for (long i = 0; i < n; i += stride) {
        double saved = w[i];
        w[i] = saved + h;
        double up = FN(compute_gradients)(m, x, y);
        w[i] = saved - h;
        double down = FN(compute_gradients)(m, x, y);
        w[i] = saved;
        double numeric = (up - down) / (2 * h);
        double scale = fmax(fmax(fabs(analytic[i]), fabs(numeric)), small);
        double err = fabs(analytic[i] - numeric) / scale;
        if (err > 1e-6) {
            w[i] = saved + 2 * h;
            double up2 = FN(compute_gradients)(m, x, y);
            w[i] = saved - 2 * h;
            double down2 = FN(compute_gradients)(m, x, y);
            w[i] = saved;
            double dl = fabs((loss - down) - (down - down2)) / h;
            double dr = fabs((up2 - up) - (up - loss)) / h;
            double one_sided = NAN;
            if (dr > 10 * dl)      /* kink on the right: use the left */
                one_sided = (3 * loss - 4 * down + down2) / (2 * h);
            else if (dl > 10 * dr) /* kink on the left: use the right */
                one_sided = (-3 * loss + 4 * up - up2) / (2 * h);
            if (!isnan(one_sided)) {
                double s1 = fmax(fmax(fabs(analytic[i]), fabs(one_sided)), small);
                double e1 = fabs(analytic[i] - one_sided) / s1;
                if (e1 <= 1e-6) {
                    kinks++;
                    err = e1;
                } else {
                    fprintf(stderr, "param %ld: beside a kink, analytic %.12g one-sided "
                            "%.12g\n", i, analytic[i], one_sided);
                }
            }
        }
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
           "error %.3g, %ld above 1e-6", GC_NAME, loss, checked,
           n, worst, bad);
    if (kinks)
        printf(" (%ld beside a kink, checked one-sided)", kinks);
    printf("\n");
    free(analytic);
    FN(free)(m);
    return bad ? 1 : 0;
}
