/* rt_rng.c — xoshiro256** (Blackman and Vigna), seeded through splitmix64.
 *
 * Only 64-bit integer arithmetic, so a seed yields the same stream on
 * every platform and compiler; that is what makes a training run
 * reproducible from its seed. */
#include "nnc_rt.h"

#include <math.h>
#include <stdint.h>

NNC_RT uint64_t nnc__rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* splitmix64 spreads a small seed (0, 1, 42) over all 256 state bits; the
 * xoshiro authors recommend it because xoshiro must not start all-zero and
 * needs well-mixed state to avoid a poor first stretch of output. */
NNC_RT uint64_t nnc__splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

NNC_RT void nnc_rng_seed(nnc_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = nnc__splitmix64(&x);
}

NNC_RT uint64_t nnc_rng_next(nnc_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = nnc__rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = nnc__rotl64(s[3], 45);
    return result;
}

NNC_RT double nnc_rng_uniform(nnc_rng *r)
{
    /* The top 53 bits fill a double's mantissa exactly. */
    return (double)(nnc_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Box-Muller without keeping the second value: the generator stays a
 * plain 256-bit state, so saving and restoring it is trivial. */
NNC_RT double nnc_rng_normal(nnc_rng *r)
{
    double u1 = 1.0 - nnc_rng_uniform(r); /* (0, 1]: log(0) is impossible */
    double u2 = nnc_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925286766559 * u2);
}

/* Rejection makes every residue equally likely: values below
 * 2^64 mod n would otherwise map onto the small residues once more often. */
NNC_RT uint64_t nnc_rng_below(nnc_rng *r, uint64_t n)
{
    if (n == 0)
        return 0;
    uint64_t threshold = (0 - n) % n; /* == 2^64 mod n */
    for (;;) {
        uint64_t x = nnc_rng_next(r);
        if (x >= threshold)
            return x % n;
    }
}

NNC_RT void nnc_rng_shuffle(nnc_rng *r, int32_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)nnc_rng_below(r, i);
        int32_t tmp = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = tmp;
    }
}
