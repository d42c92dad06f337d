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
 * With --products LIST it times a model's own products instead, one after
 * another as a training step runs them: LIST is comma-separated MxNxK
 * (C[M,N] = A[M,K] B[K,N], row-major), each maybe followed by two letters
 * n or t saying whether A and B are read transposed (64x256x784nt is
 * x W^T for a 784-256 dense layer and a batch of 64). That is the best a
 * tuned BLAS does on those shapes, with nothing else of the step:
 *
 *   bench_sgemm --products 64x256x784nt,256x784x64tn [REPS]
 *   -> products: count=2 mflop=51.4 reps=7 threads=2 core=Zen gflops=80.1 ms=0.642
 *
 * Threads come from OPENBLAS_NUM_THREADS (bench.sh sets it). Build:
 *   gcc -O2 -std=c11 tests/bench_sgemm.c -o bench_sgemm -lopenblas
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* One product of a --products list: C = op(A) op(B), row-major. */
typedef struct Product {
    int m, n, k;
    int ta, tb; /* A (B) stored transposed: [K, M] ([N, K]) */
    float *a, *b, *c;
} Product;

enum { MAX_PRODUCTS = 64 };

/* Parses LIST into p; the count, or -1 (with a message) if it is malformed. */
static int parse_products(const char *list, Product *p)
{
    int np = 0;
    for (const char *s = list; *s;) {
        Product q = {0};
        char t[3] = "nn";
        int used = 0;
        if (np == MAX_PRODUCTS ||
            sscanf(s, "%dx%dx%d%n", &q.m, &q.n, &q.k, &used) != 3 ||
            q.m <= 0 || q.n <= 0 || q.k <= 0 || q.m > 65536 || q.n > 65536 ||
            q.k > 65536) {
            fprintf(stderr, "bench_sgemm: bad product at '%s' (MxNxK[nt], at "
                    "most %d of them)\n", s, MAX_PRODUCTS);
            return -1;
        }
        s += used;
        for (int i = 0; i < 2 && (*s == 'n' || *s == 't'); i++)
            t[i] = *s++;
        q.ta = t[0] == 't';
        q.tb = t[1] == 't';
        if (*s == ',')
            s++;
        else if (*s) {
            fprintf(stderr, "bench_sgemm: expected ',' at '%s'\n", s);
            return -1;
        }
        p[np++] = q;
    }
    return np;
}

static void run_products(const Product *p, int np)
{
    for (int i = 0; i < np; i++)
        cblas_sgemm(CblasRowMajor, p[i].ta ? CblasTrans : CblasNoTrans,
                    p[i].tb ? CblasTrans : CblasNoTrans, p[i].m, p[i].n,
                    p[i].k, 1.0f, p[i].a, p[i].ta ? p[i].m : p[i].k, p[i].b,
                    p[i].tb ? p[i].k : p[i].n, 0.0f, p[i].c, p[i].n);
}

static float *filled(size_t count, int seed)
{
    float *v = malloc(count * sizeof *v);
    for (size_t i = 0; v && i < count; i++)
        v[i] = (float)((i * 7 + (size_t)seed) % 13) / 13.0f - 0.5f;
    return v;
}

/* The list run back to back: each of REPS timings is a block of runs
 * lasting about 20 ms (one run of a small model's products takes well
 * under a millisecond, too short to time alone); the median block. */
static int bench_products(const char *list, int reps)
{
    Product p[MAX_PRODUCTS];
    int np = parse_products(list, p);
    if (np <= 0)
        return 2;
    double flops = 0;
    int ok = 1;
    for (int i = 0; i < np; i++) {
        p[i].a = filled((size_t)p[i].m * p[i].k, 3);
        p[i].b = filled((size_t)p[i].k * p[i].n, 1);
        p[i].c = filled((size_t)p[i].m * p[i].n, 0);
        ok = ok && p[i].a && p[i].b && p[i].c;
        flops += 2.0 * p[i].m * p[i].n * p[i].k;
    }
    double *t = malloc((size_t)reps * sizeof *t);
    if (!ok || !t) {
        fprintf(stderr, "error: out of memory for the products\n");
        return 1;
    }
    run_products(p, np); /* warm-up: the thread pool, the pages */
    double t0 = now();
    run_products(p, np);
    double once = now() - t0;
    long inner = once > 0 ? (long)(0.02 / once) + 1 : 1000;
    for (int r = 0; r < reps; r++) {
        t0 = now();
        for (long i = 0; i < inner; i++)
            run_products(p, np);
        t[r] = (now() - t0) / (double)inner;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double med = reps % 2 ? t[reps / 2] : (t[reps / 2 - 1] + t[reps / 2]) / 2;
    printf("products: count=%d mflop=%.1f reps=%d threads=%d core=%s "
           "gflops=%.1f ms=%.4g c00=%g\n", np, flops * 1e-6, reps,
           openblas_get_num_threads(), openblas_get_corename(),
           flops / med * 1e-9, med * 1e3, (double)p[np - 1].c[0]);
    for (int i = 0; i < np; i++) {
        free(p[i].a);
        free(p[i].b);
        free(p[i].c);
    }
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--products")) {
        int reps = argc > 3 ? atoi(argv[3]) : 7;
        if (argc < 3 || reps <= 0 || reps > 1000) {
            fprintf(stderr, "usage: %s --products MxNxK[nt],... [REPS]\n",
                    argv[0]);
            return 2;
        }
        return bench_products(argv[2], reps);
    }
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
