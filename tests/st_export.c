/* st_export.c — writes the safetensors files that
 * tests/test_safetensors_torch.py reads back with Python, numpy and torch.
 *
 * Usage: st_export F32_PATH F64_PATH
 * Both files hold the same tensors and metadata; the expected values are
 * written out again in the Python test, which is the point: two
 * independent statements of one file. Keep them in sync. */
#include "nnc_rt.h"

#include <stdio.h>

static const nnc_st_tensor k_tensors[4] = {
    {"fc1.weight", 2, {4, 3}, 0},    /* (i - 5) * 0.25 */
    {"fc1.bias", 1, {4}, 12},        /* 0.5 * i */
    {"scale", 0, {0}, 16},           /* 3.0 */
    {"odd \"name\"\\\xc3\xa9", 3, {1, 2, 1}, 17}, /* 1e-3, -2e10 */
};

static const char *const k_meta[] = {"epoch", "7", "note", "h\xc3\xa9llo \"world\"\n", NULL};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s F32_PATH F64_PATH\n", argv[0]);
        return 2;
    }
    float f[19];
    double d[19];
    for (int i = 0; i < 12; i++)
        d[i] = (i - 5) * 0.25;
    for (int i = 0; i < 4; i++)
        d[12 + i] = 0.5 * i;
    d[16] = 3.0;
    d[17] = 1e-3;
    d[18] = -2e10;
    for (int i = 0; i < 19; i++)
        f[i] = (float)d[i];
    char err[512];
    if (nnc_st_save(argv[1], k_tensors, 4, f, 4, k_meta, err, sizeof err) ||
        nnc_st_save(argv[2], k_tensors, 4, d, 8, k_meta, err, sizeof err)) {
        fprintf(stderr, "st_export: %s\n", err);
        return 1;
    }
    return 0;
}
