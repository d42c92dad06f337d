/* threads.c — a model trains to the same bits on any number of threads:
 * the generated kernels split their work so that no element's sum
 * depends on how many threads share it (docs/generated-code.md). The
 * model (prefix th, from tests/threads.sh) trains STEPS steps (8; TH_STEPS
 * sets fewer for the sanitizer run) on the same batches from the same seed
 * with 1 thread, then with 2 and 3 (3 splits bands, groups and blocks
 * unevenly); every loss, every parameter and the outputs of a prediction
 * must have the bits of the 1-thread run. */
#include "th.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNTH_BATCH TH_BATCH
#define SYNTH_INPUT_SIZE TH_INPUT_SIZE
#define SYNTH_LABEL_SIZE TH_LABEL_SIZE
#ifdef TH_CLASSES
#define SYNTH_CLASSES TH_CLASSES
#endif
#include "synth_batch.h"

#ifndef TH_STEPS
#define TH_STEPS 8
#endif
enum { STEPS = TH_STEPS };

typedef struct Run {
    float loss[STEPS];
    float params[TH_PARAM_COUNT];
    float out[TH_BATCH * TH_OUTPUT_SIZE];
} Run;

/* STEPS steps on `threads` threads; 0 when the run could not be made */
static int train(int threads, Run *r)
{
    static float x[TH_BATCH * TH_INPUT_SIZE];
    static label_t y[TH_BATCH * TH_LABEL_SIZE];
    omp_set_num_threads(threads);
    th *m = th_new(3);
    if (!m)
        return 0;
    uint64_t s = 99;
    for (int step = 0; step < STEPS; step++) {
        fill_batch(&s, x, y);
        r->loss[step] = th_train_step(m, x, y);
    }
    memcpy(r->params, th_params(m), sizeof r->params);
    th_predict(m, x, TH_BATCH, r->out);
    th_free(m);
    return 1;
}

/* The first of n floats whose bits differ, or -1 */
static long first_difference(const float *a, const float *b, long n)
{
    for (long i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof a[i]))
            return i;
    return -1;
}

int main(void)
{
    static Run one, many;
    if (!train(1, &one)) {
        fprintf(stderr, "th_new failed\n");
        return 2;
    }
    int bad = 0;
    for (int threads = 2; threads <= 3; threads++) {
        if (!train(threads, &many)) {
            fprintf(stderr, "th_new failed\n");
            return 2;
        }
        long l = first_difference(one.loss, many.loss, STEPS);
        long p = first_difference(one.params, many.params, TH_PARAM_COUNT);
        long o = first_difference(one.out, many.out, TH_BATCH * TH_OUTPUT_SIZE);
        if (l >= 0)
            fprintf(stderr, "%d threads: loss of step %ld %.9g, 1 thread %.9g\n",
                    threads, l + 1, many.loss[l], one.loss[l]);
        if (p >= 0)
            fprintf(stderr, "%d threads: parameter %ld %.9g, 1 thread %.9g\n",
                    threads, p, many.params[p], one.params[p]);
        if (o >= 0)
            fprintf(stderr, "%d threads: output %ld %.9g, 1 thread %.9g\n",
                    threads, o, many.out[o], one.out[o]);
        bad |= l >= 0 || p >= 0 || o >= 0;
    }
    return bad;
}
