/* modes.c — training mode and evaluation mode (dropout, batch norm):
 * predict is evaluation mode, so it is deterministic (twice the same
 * input gives the same bits) and differs from the training-mode outputs
 * of the same batch. Built by tests/e2e.sh against a model compiled with
 * --prefix md. */
#include "md.h"

#include <stdio.h>
#include <string.h>

#ifdef MD_CLASSES
typedef int32_t label_t;
#else
typedef float label_t;
#endif

int main(void)
{
    static float x[MD_BATCH * MD_INPUT_SIZE];
    static label_t y[MD_BATCH * MD_LABEL_SIZE];
    static float train_out[MD_BATCH * MD_OUTPUT_SIZE];
    static float a[MD_BATCH * MD_OUTPUT_SIZE], b[MD_BATCH * MD_OUTPUT_SIZE];
    uint64_t s = 5;
    for (int i = 0; i < MD_BATCH * MD_INPUT_SIZE; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)(s >> 40) / (float)(1 << 24);
    }
    for (int i = 0; i < MD_BATCH * MD_LABEL_SIZE; i++)
        y[i] = (label_t)(i % 2);
    md *m = md_new(11);
    if (!m)
        return 2;
    for (int step = 0; step < 5; step++)
        md_train_step(m, x, y);
    /* a training-mode forward with the weights predict will use */
    md_compute_gradients(m, x, y);
    memcpy(train_out, md_train_output(m), sizeof train_out);
    md_predict(m, x, MD_BATCH, a);
    md_predict(m, x, MD_BATCH, b);
    int deterministic = memcmp(a, b, sizeof a) == 0;
    int differs = memcmp(a, train_out, sizeof a) != 0;
    printf("%s: evaluation deterministic: %s; differs from training mode: %s\n",
           MD_NAME, deterministic ? "yes" : "NO", differs ? "yes" : "NO");
    md_free(m);
    return deterministic && differs ? 0 : 1;
}
