/* two_models.c — two generated models linked into one program: their
 * runtimes are static, their state lives in their structs, so both work
 * side by side. */
#include "xor_lib.h"
#include "mnist_mlp_lib.h"

#include <math.h>
#include <stdio.h>

int main(void)
{
    xor *a = xor_new(1);
    mnist_mlp *b = mnist_mlp_new(2);
    if (!a || !b)
        return 1;
    static float x[XOR_BATCH * XOR_INPUT_SIZE] = {0, 0, 0, 1, 1, 0, 1, 1};
    static float y[XOR_BATCH] = {0, 1, 1, 0};
    static float img[MNIST_MLP_BATCH * MNIST_MLP_INPUT_SIZE];
    static int32_t digit[MNIST_MLP_BATCH];
    float la = xor_train_step(a, x, y);
    float lb = mnist_mlp_train_step(b, img, digit);
    int bad = !isfinite(la) || !isfinite(lb) || xor_steps(a) != 1 ||
              mnist_mlp_steps(b) != 1;
    if (bad)
        fprintf(stderr, "two models: losses %g %g, steps %ld %ld\n", la, lb,
                xor_steps(a), mnist_mlp_steps(b));
    xor_free(a);
    mnist_mlp_free(b);
    return bad;
}
