/* synth_batch.h — the pseudo-random training batches of the drivers
 * that compare two runs of a generated model (tests/fusecheck.c,
 * tests/threads.c): inputs uniform in [0, 1), labels uniform classes,
 * or 0/1 targets, from a 64-bit LCG, so both runs see the same data.
 *
 * Define SYNTH_BATCH, SYNTH_INPUT_SIZE, SYNTH_LABEL_SIZE and, when the
 * labels are classes, SYNTH_CLASSES (from the model's header) before
 * including it. */
#ifndef SYNTH_BATCH_H
#define SYNTH_BATCH_H

#include <stdint.h>

#ifdef SYNTH_CLASSES
typedef int32_t label_t;
#else
typedef float label_t;
#endif

static double next_uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static void fill_batch(uint64_t *s, float *x, label_t *y)
{
    for (int i = 0; i < SYNTH_BATCH * SYNTH_INPUT_SIZE; i++)
        x[i] = (float)next_uniform(s);
    for (int i = 0; i < SYNTH_BATCH * SYNTH_LABEL_SIZE; i++) {
#ifdef SYNTH_CLASSES
        y[i] = (label_t)(next_uniform(s) * SYNTH_CLASSES);
#else
        y[i] = (label_t)(next_uniform(s) < 0.5);
#endif
    }
}

#endif
