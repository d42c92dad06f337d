/* fusecheck.c — the same model compiled fused (prefix fz) and unfused
 * (prefix uf) must train alike: same initial weights, same batches, and
 * after STEPS training steps (20; FC_STEPS sets fewer for the sanitizer
 * run, where a step runs the same code as the first) the same losses and
 * parameters within float rounding. Built by tests/fusecheck.sh; fz.h
 * defines FZ_CLASSES when the labels are classes.
 *
 * Tolerance: every loss within 1e-4 relative, every parameter within
 * 1e-4 * max(1, |w|). Fusion keeps the arithmetic of each op, but one
 * rule (softmax_xent_grad) computes p - t instead of going through 1/p,
 * and Adam turns rounding-sized gradient differences into visible ones
 * for gradients near zero; 1e-4 is far below any real bug's effect. */
#include "fz.h"
#include "uf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNTH_BATCH FZ_BATCH
#define SYNTH_INPUT_SIZE FZ_INPUT_SIZE
#define SYNTH_LABEL_SIZE FZ_LABEL_SIZE
#ifdef FZ_CLASSES
#define SYNTH_CLASSES FZ_CLASSES
#endif
#include "synth_batch.h"

#ifndef FC_STEPS
#define FC_STEPS 20
#endif
enum { STEPS = FC_STEPS };

int main(void)
{
    static float x[FZ_BATCH * FZ_INPUT_SIZE];
    static label_t y[FZ_BATCH * FZ_LABEL_SIZE];
    fz *a = fz_new(3);
    uf *b = uf_new(3);
    if (!a || !b)
        return 2;
    uint64_t s = 99;
    int bad = 0;
    double worst_loss = 0, worst_param = 0;
    for (int step = 0; step < STEPS; step++) {
        fill_batch(&s, x, y);
        double la = fz_train_step(a, x, y), lb = uf_train_step(b, x, y);
        double rel = fabs(la - lb) / fmax(fabs(lb), 1e-6);
        worst_loss = fmax(worst_loss, rel);
        if (rel > 1e-4 || la != la) {
            fprintf(stderr, "step %d: fused loss %.9g, unfused %.9g\n", step, la,
                    lb);
            bad = 1;
        }
    }
    const float *pa = fz_params(a), *pb = uf_params(b);
    for (long i = 0; i < FZ_PARAM_COUNT; i++) {
        double d = fabs((double)pa[i] - pb[i]) / fmax(1.0, fabs((double)pb[i]));
        worst_param = fmax(worst_param, d);
        if (d > 1e-4 && bad < 5) {
            fprintf(stderr, "param %ld: fused %.9g, unfused %.9g\n", i, pa[i],
                    pb[i]);
            bad++;
        }
    }
    static float oa[FZ_BATCH * FZ_OUTPUT_SIZE], ob[FZ_BATCH * FZ_OUTPUT_SIZE];
    fz_predict(a, x, FZ_BATCH, oa);
    uf_predict(b, x, FZ_BATCH, ob);
    for (int i = 0; i < FZ_BATCH * FZ_OUTPUT_SIZE; i++)
        if (fabs(oa[i] - ob[i]) > 1e-4 * fmax(1.0, fabs(ob[i])) && bad < 5) {
            fprintf(stderr, "output %d: fused %.9g, unfused %.9g\n", i, oa[i],
                    ob[i]);
            bad++;
        }
    printf("%s: %d steps, worst loss difference %.2g, worst parameter "
           "difference %.2g\n", FC_NAME, STEPS, worst_loss, worst_param);
    fz_free(a);
    uf_free(b);
    return bad ? 1 : 0;
}
