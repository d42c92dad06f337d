/* exactcheck.c — fused and unfused code compute the same numbers, bit
 * for bit, on values where float arithmetic is exact (oneDNN benchdnn's
 * trick). Built by tests/exactcheck.sh from one model compiled fused
 * (prefix fz, included here as source so its checkpoint table, with each
 * tensor's name, shape and offset, can be read) and --no-fuse (prefix uf,
 * linked).
 *
 * Values: every parameter tensor is rounded to a 3-bit grid, k * 2^-e with
 * |k| <= 4 and 2^-e a quarter of the power of two above its largest
 * magnitude (so ones, zeros and PyTorch's initial ranges all stay on such
 * a grid); inputs are k / 4 with |k| <= 4. Products then have few bits,
 * and sums of them are exact in float whatever their order, so a fused
 * kernel that sums in another order must still agree exactly.
 *
 * Compared with zero tolerance, for STEPS training steps: predict's
 * outputs and evaluate's loss (evaluation mode), then the training loss,
 * the training outputs, every gradient, and after the update every
 * parameter and buffer. With -DFORWARD_ONLY (a model using a rule whose
 * fused arithmetic is not the unfused one, on values where that shows:
 * see tests/exactcheck.sh) only the outputs and losses are compared, and
 * the unfused model takes the fused one's parameters after each step.
 * A difference is reported with the tensor's name and index and both
 * values; exit status 1.
 *
 * Whether the values really are exact is measured, not assumed: the same
 * model built with --dtype f64 (prefix fd, linked) computes each step from
 * the same parameters, and a tensor of the fused float results counts as
 * exact when every value equals the double one. The last line reports
 * how many are (with -DREQUIRE_EXACT, for the models of tests/exact/,
 * every tensor but the loss must be); transcendental ops (exp, log, sigmoid, tanh, softmax,
 * batch norm's square root) and long chains of products are not, and
 * there the zero-tolerance comparison holds only because fused and
 * unfused code compute the same expressions in the same order. */
#include "fz.c"
#include "uf.h"
#include "fd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef FZ_CLASSES
typedef int32_t label_t;
typedef int32_t dlabel_t;
#else
typedef float label_t;
typedef double dlabel_t;
#endif

enum { STEPS = 3 };

#ifdef FORWARD_ONLY
enum { COMPARE_GRADIENTS = 0 };
#else
enum { COMPARE_GRADIENTS = 1 };
#endif

static uint64_t next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static long tensor_size(const nnc_st_tensor *t)
{
    long n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= (long)t->shape[d];
    return n;
}

/* Each tensor onto its grid of 9 values k * step, |k| <= 4. */
static void quantize(float *w)
{
    for (int t = 0; t < NTENSORS; t++) {
        float *p = w + fz_tensors[t].offset;
        long n = tensor_size(&fz_tensors[t]);
        float top = 0;
        for (long i = 0; i < n; i++)
            top = fmaxf(top, fabsf(p[i]));
        if (top == 0)
            continue;
        float step = ldexpf(1.0f, (int)ceilf(log2f(top)) - 2);
        for (long i = 0; i < n; i++)
            p[i] = roundf(p[i] / step) * step;
    }
}

static void fill_batch(uint64_t *s, float *x, label_t *y)
{
    for (int i = 0; i < FZ_BATCH * FZ_INPUT_SIZE; i++)
        x[i] = (float)((int)(next(s) % 9) - 4) / 4.0f;
    for (int i = 0; i < FZ_BATCH * FZ_LABEL_SIZE; i++) {
#ifdef FZ_CLASSES
        y[i] = (label_t)(next(s) % FZ_CLASSES);
#else
        y[i] = (label_t)(next(s) % 2);
#endif
    }
}

static int differences;

/* Zero tolerance: the same bits (a NaN on both sides counts as equal,
 * and is reported by the caller's finiteness check instead). */
static void same(const char *what, int step, const float *a, const float *b,
                 long n)
{
    for (long i = 0; i < n; i++) {
        if (a[i] == b[i] || (a[i] != a[i] && b[i] != b[i]))
            continue;
        printf("  step %d: %s[%ld]: fused %.9g, unfused %.9g\n", step, what,
               i, (double)a[i], (double)b[i]);
        differences++;
        return;
    }
}

static int exact, measured, inexact_beyond_loss;
static char inexact[1024]; /* names of tensors not exact at step 1 */

/* Whether the float results f equal the double-precision build's d. */
static void tally(const char *what, int step, const float *f, const double *d,
                  long n)
{
    long i = 0;
    while (i < n && (double)f[i] == d[i])
        i++;
    measured++;
    if (i == n)
        exact++;
    else if (strcmp(what, "loss") != 0)
        inexact_beyond_loss++;
    if (i < n && step == 1 && strlen(inexact) + strlen(what) + 3 < sizeof inexact)
        snprintf(inexact + strlen(inexact), sizeof inexact - strlen(inexact),
                 "%s%s", inexact[0] ? ", " : "", what);
}

/* The training step of the double-precision build from a's parameters and
 * the same batch, tallied against a's results (loss: a's training loss). */
static void measure(fz *a, fd *d, int step, const float *x, const label_t *y,
                    float loss)
{
    static double xd[FZ_BATCH * FZ_INPUT_SIZE];
    static dlabel_t yd[FZ_BATCH * FZ_LABEL_SIZE];
    for (long i = 0; i < FZ_BATCH * FZ_INPUT_SIZE; i++)
        xd[i] = x[i];
    for (long i = 0; i < FZ_BATCH * FZ_LABEL_SIZE; i++)
        yd[i] = (dlabel_t)y[i];
    for (long i = 0; i < FZ_PARAM_COUNT; i++)
        fd_params(d)[i] = fz_params(a)[i];
    double dloss = fd_compute_gradients(d, xd, yd);
    tally("loss", step, &loss, &dloss, 1);
    tally("outputs", step, fz_train_output(a), fd_train_output(d),
          FZ_BATCH * FZ_OUTPUT_SIZE);
    for (int t = 0; t < NTENSORS; t++) {
        char what[256];
        snprintf(what, sizeof what, "%s.grad", fz_tensors[t].name);
        tally(what, step, fz_grads(a) + fz_tensors[t].offset,
              fd_grads(d) + fz_tensors[t].offset, tensor_size(&fz_tensors[t]));
    }
    fd_apply_update(d); /* keeps the step count, which dropout's masks follow */
}

/* Each checkpoint tensor of a block (parameters or gradients). */
static void same_tensors(const char *suffix, int step, const float *a,
                         const float *b)
{
    for (int t = 0; t < NTENSORS; t++) {
        char what[256];
        snprintf(what, sizeof what, "%s%s", fz_tensors[t].name, suffix);
        same(what, step, a + fz_tensors[t].offset, b + fz_tensors[t].offset,
             tensor_size(&fz_tensors[t]));
    }
}

int main(void)
{
    static float x[FZ_BATCH * FZ_INPUT_SIZE];
    static float out_a[FZ_BATCH * FZ_OUTPUT_SIZE], out_b[FZ_BATCH * FZ_OUTPUT_SIZE];
    static label_t y[FZ_BATCH * FZ_LABEL_SIZE];
    fz *a = fz_new(5);
    uf *b = uf_new(5);
    fd *d = fd_new(5);
    if (!a || !b || !d)
        return 2;
    quantize(fz_params(a));
    memcpy(uf_params(b), fz_params(a), sizeof(float) * FZ_PARAM_COUNT);
    uint64_t s = 12345;
    for (int step = 1; step <= STEPS; step++) {
        fill_batch(&s, x, y);
        fz_predict(a, x, FZ_BATCH, out_a);
        uf_predict(b, x, FZ_BATCH, out_b);
        same("predict output", step, out_a, out_b, FZ_BATCH * FZ_OUTPUT_SIZE);
        float la = fz_evaluate(a, x, y, NULL), lb = uf_evaluate(b, x, y, NULL);
        same("evaluation loss", step, &la, &lb, 1);
        la = fz_compute_gradients(a, x, y);
        lb = uf_compute_gradients(b, x, y);
        if (!isfinite(la) || !fz_gradients_finite(a)) {
            printf("  step %d: not finite: %s\n", step,
                   fz_find_nonfinite(a, x, y) ? fz_error(a) : "?");
            differences++;
            break;
        }
        measure(a, d, step, x, y, la);
        same("training loss", step, &la, &lb, 1);
        same("training output", step, fz_train_output(a), uf_train_output(b),
             FZ_BATCH * FZ_OUTPUT_SIZE);
        if (COMPARE_GRADIENTS)
            same_tensors(".grad", step, fz_grads(a), uf_grads(b));
        fz_apply_update(a);
        uf_apply_update(b);
        if (COMPARE_GRADIENTS)
            same_tensors(" after the update", step, fz_params(a), uf_params(b));
        /* lr * grad leaves the grid: back onto it, the same for both, so
         * the next step is exact again */
        quantize(fz_params(a));
        memcpy(uf_params(b), fz_params(a), sizeof(float) * FZ_PARAM_COUNT);
    }
    fz_free(a);
    uf_free(b);
    fd_free(d);
    printf("%s: exact in float (equal to --dtype f64): %d of %d tensors; "
           "not exact: %s\n", FC_NAME, exact, measured,
           inexact[0] ? inexact : "none");
    printf("%s: %d tensors differ\n", FC_NAME, differences);
#ifdef REQUIRE_EXACT
    if (inexact_beyond_loss) {
        printf("%s: built to be exact, but %d tensors (besides the loss) are "
               "not\n", FC_NAME, inexact_beyond_loss);
        return 1;
    }
#endif
    return differences ? 1 : 0;
}
