/* smooth_driver.c — one loss and gradient of a generated cross-entropy,
 * for tests/train/smooth_torch.py to recompute in PyTorch.
 *
 * Built against a model compiled with `nnc --dtype f64 --prefix xs`
 * (tests/train/smooth_torch.sh): one dense layer to C scores, then the
 * loss under test. Sets the parameters to SCALE * cos(0.7 i) / 2 (SCALE
 * from argv[1]; large values drive the logits to hundreds), the inputs
 * to sin(1.1 i), the labels to classes (5 i + 2) mod C or to
 * probabilities (1 + sin(2.3 i)) / 2, which need not sum to one. Prints
 * the inputs, labels and parameters it used, the training loss, the
 * evaluation-mode loss and every gradient, with 17 digits. */
#include "xs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef XS_CLASSES
typedef int32_t label_t;
#else
typedef double label_t;
#endif

int main(int argc, char **argv)
{
    double scale = argc > 1 ? atof(argv[1]) : 1;
    xs *m = xs_new(1);
    if (!m)
        return 1;
    static double x[XS_BATCH * XS_INPUT_SIZE];
    static label_t y[XS_BATCH * XS_LABEL_SIZE];
    static double out[XS_BATCH * XS_OUTPUT_SIZE];
    double *w = xs_params(m);
    for (long i = 0; i < XS_PARAM_COUNT; i++)
        w[i] = scale * cos(0.7 * (double)i) / 2;
    for (int i = 0; i < XS_BATCH * XS_INPUT_SIZE; i++)
        x[i] = sin(1.1 * i);
    for (int i = 0; i < XS_BATCH * XS_LABEL_SIZE; i++) {
#ifdef XS_CLASSES
        y[i] = (5 * i + 2) % XS_CLASSES;
        printf("y %d %d\n", i, (int)y[i]);
#else
        y[i] = (1 + sin(2.3 * i)) / 2;
        printf("y %d %.17g\n", i, y[i]);
#endif
    }
    for (int i = 0; i < XS_BATCH * XS_INPUT_SIZE; i++)
        printf("x %d %.17g\n", i, x[i]);
    for (long i = 0; i < XS_PARAM_COUNT; i++)
        printf("w %ld %.17g\n", i, w[i]);
    double loss = xs_compute_gradients(m, x, y);
    const double *g = xs_grads(m);
    for (long i = 0; i < XS_PARAM_COUNT; i++)
        printf("g %ld %.17g\n", i, g[i]);
    printf("loss %.17g\n", loss);
    printf("eval_loss %.17g\n", xs_evaluate(m, x, y, out));
    xs_free(m);
    return 0;
}
