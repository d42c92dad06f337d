/* adam_block.c — nnc_adamf_block, as nnc emits it, has the bits of the
 * expression it replaces: num / (sqrtf(sq) / c + eps).
 *
 * Built by tests/adam_block.sh with the generated C of a float model
 * trained by Adam included (GENERATED names it), so the function under
 * test is the emitted one, with -march=native: on an AVX-512 machine its
 * FMA divisions, elsewhere its plain loop.
 *
 * 1. Every significand of 1/den, where the reciprocal's last Newton step
 *    can fail: sq = 0 makes den = eps exactly, so den runs over all 2^23
 *    significands in four binades (Adam's eps of 1e-8 lies in the first),
 *    with numerators of both signs and many magnitudes in the lanes.
 * 2. Random blocks over the whole float range: sq and num of any
 *    exponent, with zeros of both signs, subnormals, infinities and NaN
 *    among them, and c and eps as Adam makes them and outside that.
 * 3. Every float v, so every root, for the first step's divisor (every
 *    STRIDE-th block of 16 with a second argument, as under the
 *    sanitizers).
 * 2 and 3 run again with subnormals flushed to zero, as the trainer runs.
 * Every lane is compared bit for bit (any NaN equals any NaN). Prints
 * "N passed, N failed". */
#include GENERATED

#include <stdint.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* the expression the block replaces, one lane at a time; volatile keeps
 * gcc from vectorising it into the same instructions */
static float expected(float sq, float num, float c, float eps)
{
    volatile float root = sqrtf(sq);
    volatile float den = root / c + eps;
    return num / den;
}

static long failures, checked;

static void check_block(const float *sq, const float *num, float c, float eps)
{
    float out[16];
    nnc_adamf_block(out, sq, num, c, 1 / c, eps);
    for (int l = 0; l < 16; l++) {
        float want = expected(sq[l], num[l], c, eps);
        checked++;
        if (to_bits(out[l]) == to_bits(want) || (isnan(out[l]) && isnan(want)))
            continue;
        if (failures++ < 10)
            printf("FAIL sq=%a num=%a c=%a eps=%a: got %a, want %a\n",
                   (double)sq[l], (double)num[l], (double)c, (double)eps,
                   (double)out[l], (double)want);
    }
}

/* any float: a random exponent (all of them, subnormal and infinite or
 * NaN included) and significand, or now and then a special value */
static float any_float(void)
{
    uint64_t r = next();
    switch (r % 16) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return from_bits((uint32_t)(r >> 32) & 0x807fffffu); /* subnormal */
    case 3: return (r >> 8) % 2 ? INFINITY : NAN;
    default: return from_bits((uint32_t)(r >> 32));
    }
}

/* a float of random significand whose exponent is one of lo..hi
 */
static float edge_float(int lo, int hi, uint64_t r)
{
    int e = lo + (int)(r % (uint64_t)(hi - lo + 1));
    return from_bits((uint32_t)(e + 127) << 23 | ((uint32_t)(r >> 40) & 0x7fffffu));
}

static void every_reciprocal(void)
{
    static const uint32_t binades[] = {0x32800000u /* 2^-26 */, 0x3f800000u,
                                       0x21800000u /* 2^-60 */, 0x5d000000u /* 2^59 */};
    float sq[16] = {0}, num[16];
    for (size_t b = 0; b < sizeof binades / sizeof binades[0]; b++) {
        for (uint32_t s = 0; s < (1u << 23); s++) {
            float eps = from_bits(binades[b] | s);
            for (int l = 0; l < 16; l++) /* |num| in [2^-70, 2^70] */
                num[l] = from_bits((uint32_t)(next() >> 32) % 0x46000000u +
                                   0x1c800000u) * (l % 2 ? -1.0f : 1.0f);
            check_block(sq, num, 1.0f, eps);
        }
    }
}

static void random_blocks(long n)
{
    static const float cs[] = {0.0316227779f, 0.1f, 0.70710677f, 1.0f,
                               0.00123f, 0x1p-31f, 0x1p31f, 0.0f};
    static const float epss[] = {1e-8f, 1e-3f, 1e-30f, 0.0f, 1.0f};
    float sq[16], num[16];
    for (long k = 0; k < n; k++) {
        uint64_t r = next();
        float c = k % 4 ? from_bits(0x3d000000u + (uint32_t)(r % 0x2800000u)) /* [2^-5, 1) */
                        : cs[(r >> 32) % (sizeof cs / sizeof cs[0])];
        float eps = epss[(r >> 40) % (sizeof epss / sizeof epss[0])];
        for (int l = 0; l < 16; l++) {
            sq[l] = fabsf(any_float());
            num[l] = any_float();
            if (l % 4 == 0) /* a typical Adam lane: v and m of a gradient */
                sq[l] = from_bits(0x28000000u + (uint32_t)(next() % 0x10000000u));
        }
        if (k % 3 == 0) { /* lanes at the edges of the FMA path's ranges */
            for (int l = 1; l < 16; l += 2) {
                num[l] = edge_float(62, 66, next()) * (l % 4 == 1 ? 1.0f : -1.0f);
                sq[l] = edge_float(112, 126, next()); /* roots near 2^60 */
            }
            num[2] = edge_float(-80, -76, next()); /* over a root near 2^40 */
            sq[2] = edge_float(76, 90, next());
            num[4] = edge_float(62, 66, next()); /* over a root near 2^-60 */
            sq[4] = edge_float(-126, -110, next());
            num[6] = edge_float(-80, -76, next()); /* over a root near 2^64 */
            sq[6] = edge_float(120, 127, next());
            num[8] = edge_float(-126, -77, next()); /* a decaying m */
            num[10] = edge_float(-126, -100, next()); /* over a large root */
            sq[10] = edge_float(-20, 127, next());
        }
        if (k % 1000 == 0) /* a negative sq: a NaN root */
            sq[k / 1000 % 16] = -1.0f;
        if (k % 1000 == 500) /* -0: a root of -0 */
            sq[k / 1000 % 16] = -0.0f;
        check_block(sq, num, c, eps);
    }
}

/* 3. Every v a float can hold, so every root, divided by Adam's first
 * √bias2 (beta2 0.999, step 1; the smallest divisor, so the widest
 * quotients), eps 1e-8 and eps 0 (den = root / c alone), the expected
 * values a block at a time (built with -fno-math-errno, so that loop
 * vectorises into exact vector roots and divisions too). */
static void every_root(uint32_t stride)
{
    const float c = 0.0316227749f; /* (float)sqrt(1 - 0.999) */
    const float epss[] = {1e-8f, 0.0f};
    float sq[16], num[16], got[16], want[16];
    for (size_t e = 0; e < sizeof epss / sizeof epss[0]; e++) {
        for (uint32_t u = 0; u < 0x7f800000u; u += 16 * stride) {
            for (int l = 0; l < 16; l++) {
                sq[l] = from_bits(u + (uint32_t)l);
                num[l] = l % 2 ? -1e-3f : 3.5e-7f;
            }
            nnc_adamf_block(got, sq, num, c, 1 / c, epss[e]);
            for (int l = 0; l < 16; l++)
                want[l] = num[l] / (sqrtf(sq[l]) / c + epss[e]);
            checked += 16;
            if (memcmp(got, want, sizeof got) == 0)
                continue;
            for (int l = 0; l < 16; l++)
                if (to_bits(got[l]) != to_bits(want[l]) && failures++ < 10)
                    printf("FAIL sq=%a eps=%a: got %a, want %a\n", (double)sq[l],
                           (double)epss[e], (double)got[l], (double)want[l]);
        }
    }
}

/* The trainer flushes subnormal numbers to zero (nnc__flush_subnormals):
 * parts 2 and 3 again in that mode, where a remainder too small to be
 * normal would be lost. */
static int flush_subnormals(void)
{
#if defined(__SSE2__)
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ and DAZ */
    return 1;
#else
    return 0;
#endif
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    uint32_t stride = argc > 2 ? (uint32_t)atol(argv[2]) : 1; /* of blocks of v */
    every_reciprocal();
    every_root(stride ? stride : 1);
    random_blocks(n);
    if (flush_subnormals()) {
        every_root(stride ? stride : 1);
        random_blocks(n);
    }
    printf("%ld lanes compared, %ld differ\n", checked, failures);
    printf("%d passed, %d failed\n", failures == 0, failures != 0);
    return failures != 0;
}
