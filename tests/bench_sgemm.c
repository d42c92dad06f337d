/* bench_sgemm.c — the machine's single-precision ceiling, for tests/bench.sh.
 *
 * Times OpenBLAS cblas_sgemm on an N x N x N product (C = A * B), REPS
 * times after one warm-up call, and prints the median rate, so that the
 * GFLOP/s of nnc's generated trainers can be given as a fraction of what a
 * tuned BLAS reaches on the same cores at the same moment.
 *
 *   bench_sgemm [N [REPS]]          (defaults: 2048 7)
 *   -> sgemm: n=2048 reps=7 threads=2 core=Zen gflops=123.4 ms=139.2
 *
 * Threads come from OPENBLAS_NUM_THREADS (bench.sh sets it). Build:
 *   gcc -O2 -std=c11 tests/bench_sgemm.c -o bench_sgemm -lopenblas
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* OpenBLAS' own entry points. Debian's cblas.h declares them when it is
 * OpenBLAS' header, but the cblas.h alternative may be netlib's: declaring
 * them here keeps the build independent of which one is selected. */
char *openblas_get_corename(void);
int openblas_get_num_threads(void);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2048;
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    if (n <= 0 || reps <= 0 || reps > 1000) {
        fprintf(stderr, "usage: %s [N [REPS]]\n", argv[0]);
        return 2;
    }
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b);
    float *c = malloc(nn * sizeof *c);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!a || !b || !c || !t) {
        fprintf(stderr, "error: out of memory for n=%d\n", n);
        return 1;
    }
    /* Small deterministic values: denormals or NaNs would distort timing. */
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)((i * 7 + 3) % 13) / 13.0f - 0.5f;
        b[i] = (float)((i * 5 + 1) % 11) / 11.0f - 0.5f;
    }
    /* The warm-up starts OpenBLAS' thread pool and faults the pages in. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n,
                b, n, 0.0f, c, n);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f,
                    a, n, b, n, 0.0f, c, n);
        t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double med = reps % 2 ? t[reps / 2] : (t[reps / 2 - 1] + t[reps / 2]) / 2;
    double flops = 2.0 * (double)n * (double)n * (double)n;
    /* Print a result element so the products cannot be optimised away and
     * a broken BLAS (wrong results on an unknown core) shows up as NaN. */
    printf("sgemm: n=%d reps=%d threads=%d core=%s gflops=%.1f ms=%.1f c00=%g\n",
           n, reps, openblas_get_num_threads(), openblas_get_corename(),
           flops / med * 1e-9, med * 1e3, (double)c[0]);
    free(a);
    free(b);
    free(c);
    free(t);
    return 0;
}
