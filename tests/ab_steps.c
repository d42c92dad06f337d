/* ab_steps.c — two builds of one model (prefixes ma and mb, from
 * tests/ab.sh) train in one process, in alternating chunks of steps on
 * the same batch, so a change of the generated code is timed against the
 * code before it under the same conditions: the same threads, the same
 * minute of a VM whose speed moves by tens of percent from one minute to
 * the next. Prints the median time a step of each and the median and
 * quartiles of the ratio B/A over the chunks, and whether the two
 * trained to the same parameters (a change that keeps the bits must).
 * Usage: ab_steps [CHUNKS [STEPS_PER_CHUNK]] (200, 20). */
#define _POSIX_C_SOURCE 200809L
#include "ma.h"
#include "mb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#define THREADS omp_get_max_threads()
#else
#define THREADS 1
#endif

#define SYNTH_BATCH MA_BATCH
#define SYNTH_INPUT_SIZE MA_INPUT_SIZE
#define SYNTH_LABEL_SIZE MA_LABEL_SIZE
#ifdef MA_CLASSES
#define SYNTH_CLASSES MA_CLASSES
#endif
#include "synth_batch.h"

enum { WARMUP = 50 };

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return v[(int)(q * (n - 1) + 0.5)];
}

int main(int argc, char **argv)
{
    const int chunks = argc > 1 ? atoi(argv[1]) : 200;
    const int per = argc > 2 ? atoi(argv[2]) : 20;
    if (chunks < 1 || per < 1) {
        fprintf(stderr, "usage: %s [CHUNKS [STEPS_PER_CHUNK]]\n", argv[0]);
        return 2;
    }
    static float x[MA_BATCH * MA_INPUT_SIZE];
    static label_t y[MA_BATCH * MA_LABEL_SIZE];
    uint64_t s = 5;
    fill_batch(&s, x, y);
    ma *a = ma_new(1);
    mb *b = mb_new(1);
    double *ta = malloc(sizeof *ta * (size_t)chunks);
    double *tb = malloc(sizeof *tb * (size_t)chunks);
    double *r = malloc(sizeof *r * (size_t)chunks);
    if (!a || !b || !ta || !tb || !r) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    for (int w = 0; w < WARMUP; w++) {
        ma_train_step(a, x, y);
        mb_train_step(b, x, y);
    }
    /* A first in even chunks, B first in odd ones: the first of a pair
     * finds the caches as the other left them */
    for (int c = 0; c < chunks; c++) {
        for (int turn = 0; turn < 2; turn++) {
            const double t0 = seconds();
            if ((turn + c) % 2 == 0)
                for (int i = 0; i < per; i++)
                    ma_train_step(a, x, y);
            else
                for (int i = 0; i < per; i++)
                    mb_train_step(b, x, y);
            *((turn + c) % 2 == 0 ? &ta[c] : &tb[c]) = (seconds() - t0) / per * 1e3;
        }
        r[c] = tb[c] / ta[c];
    }
    const int same = memcmp(ma_params(a), mb_params(b), sizeof(float) * MA_PARAM_COUNT) == 0;
    printf("%d chunks of %d steps, %d threads: A %.4g ms a step, B %.4g ms (medians); "
           "B/A median %.4f, quartiles %.4f %.4f; parameters %s\n",
           chunks, per, THREADS, quantile(ta, chunks, 0.5),
           quantile(tb, chunks, 0.5), quantile(r, chunks, 0.5), quantile(r, chunks, 0.25),
           quantile(r, chunks, 0.75), same ? "the same bits" : "DIFFER");
    ma_free(a);
    mb_free(b);
    free(ta);
    free(tb);
    free(r);
    return 0;
}
