/* stable.c — tests/stable/stable.nn with weights that make the logits
 * +-1000: loss, gradients and outputs stay finite, and the loss has the
 * value the maths gives (so nothing was silently clipped to garbage). */
#include "st.h"

#include <math.h>
#include <stdio.h>

int main(void)
{
    st *m = st_new(1);
    if (!m)
        return 2;
    float *w = st_params(m); /* weight [3, 2] */
    const float rows[3][2] = {{1000, 0}, {-1000, 0}, {0, 1000}};
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < 2; i++)
            w[o * 2 + i] = rows[o][i];
    /* sample 0: logits (1000, -1000, 0); sample 1: (0, 0, 1000) */
    const float x[ST_BATCH * 2] = {1, 0, 0, 1};
    const float t[ST_BATCH * 3] = {0, 1, 0, 1, 0, 0};
    float loss = st_compute_gradients(m, x, t);
    int bad = !isfinite(loss);
    const float *g = st_grads(m);
    for (long i = 0; i < ST_PARAM_COUNT; i++)
        bad |= !isfinite(g[i]);
    float out[ST_BATCH * 3];
    st_predict(m, x, ST_BATCH, out);
    for (int i = 0; i < ST_BATCH * 3; i++)
        bad |= !isfinite(out[i]);
    /* by hand: cross_entropy from logits (2000 + 1000) / 2 = 1500;
     * bce_with_logits (2000.69 + 1001.39) / 6 = 500.35; bce on sigmoids
     * with PyTorch's log clamp at -100 (200.69 + 101.39) / 6 = 50.35;
     * cross_entropy of probabilities clipped at 1e-7: 16.12. */
    printf("stable: loss %.6g, gradients and outputs %s\n", loss,
           bad ? "NOT finite" : "finite");
    st_free(m);
    return bad || fabs(loss - 2066.8) > 0.1 ? 1 : 0;
}
