/* harness.c — runs the nnc model of xc.nn (built with --dtype f64) on a
 * fixed batch, for xc.py to repeat in PyTorch: saves the initial weights,
 * takes one training-mode forward and backward pass (loss, gradients,
 * running statistics), then predicts in evaluation mode. Writes, in the
 * current directory, before.safetensors, x.bin and nnc.txt (the loss,
 * the gradient block, the parameter block, the outputs, one per line). */
#include "xc.h"
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
    static double x[XC_BATCH * XC_INPUT_SIZE], out[XC_BATCH * XC_OUTPUT_SIZE];
    static int32_t y[XC_BATCH];
    uint64_t s = 99;
    for (int i = 0; i < XC_BATCH * XC_INPUT_SIZE; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (double)(s >> 11) / 9007199254740992.0 * 2 - 1;
    }
    for (int i = 0; i < XC_BATCH; i++)
        y[i] = i % 4;
    xc *m = xc_new(3);
    if (!m || xc_save(m, "before.safetensors")) {
        fprintf(stderr, "harness: %s\n", m ? xc_error(m) : "out of memory");
        return 1;
    }
    FILE *f = fopen("x.bin", "wb");
    if (!f || fwrite(x, sizeof x, 1, f) != 1 || fclose(f))
        return 1;
    double loss = xc_compute_gradients(m, x, y);
    xc_predict(m, x, XC_BATCH, out);
    f = fopen("nnc.txt", "w");
    if (!f)
        return 1;
    fprintf(f, "%.17g\n", loss);
    for (int i = 0; i < XC_PARAM_COUNT; i++)
        fprintf(f, "%.17g\n", xc_grads(m)[i]);
    for (int i = 0; i < XC_PARAM_COUNT; i++)
        fprintf(f, "%.17g\n", xc_params(m)[i]);
    for (int i = 0; i < XC_BATCH * XC_OUTPUT_SIZE; i++)
        fprintf(f, "%.17g\n", out[i]);
    xc_free(m);
    return fclose(f) ? 1 : 0;
}
