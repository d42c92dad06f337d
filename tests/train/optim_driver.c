/* optim_driver.c — drives one generated optimizer on made-up gradients.
 *
 * Built against a model compiled with `nnc --dtype f64 --prefix opt`, or
 * with -DREAL=float against the default f32 build: sets the parameters to
 * cos(0.7 i) / 2 (rounded to REAL), then for STEPS steps writes the
 * gradient sin(0.37 i + 1.3 s) (1 + 0.1 s) of element i at step s into
 * opt_grads() and calls opt_apply_update(); halves the learning rate
 * through opt_set_lr() before step 4 (as a schedule would). Prints every
 * parameter after every step, one "s i value" line each, with 17 digits,
 * for tests/train/optim_torch.py to replay in torch.optim. */
#include "opt.h"

#include <math.h>
#include <stdio.h>

#ifndef REAL
#define REAL double
#endif

enum { STEPS = 6 };

int main(void)
{
    opt *m = opt_new(1);
    if (!m)
        return 1;
    REAL *w = opt_params(m), *g = opt_grads(m);
    for (long i = 0; i < OPT_PARAM_COUNT; i++)
        w[i] = (REAL)(cos(0.7 * (double)i) / 2);
    for (int s = 1; s <= STEPS; s++) {
        if (s == 4)
            opt_set_lr(m, opt_get_lr(m) / 2);
        for (long i = 0; i < OPT_PARAM_COUNT; i++)
            g[i] = (REAL)(sin(0.37 * (double)i + 1.3 * s) * (1 + 0.1 * s));
        opt_apply_update(m);
        for (long i = 0; i < OPT_PARAM_COUNT; i++)
            printf("%d %ld %.17g\n", s, i, (double)w[i]);
    }
    printf("steps %ld\n", opt_steps(m));
    opt_free(m);
    return 0;
}
