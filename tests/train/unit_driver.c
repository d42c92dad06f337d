/* unit_driver.c — the trainer's gradient clipping and augmentation, on
 * their own. Includes a trainer generated from tests/train/img.nn with
 * `nnc --main --dtype f64 --prefix unit`, so the runtime's static
 * functions are in reach.
 *
 *   unit_driver clip VALUE NORM  prints the gradients before and after
 *       nnc__clip (clip_grad_value_ VALUE, then clip_grad_norm_ NORM; 0 is
 *       off), one "before after" pair per line, for clip_torch.py;
 *   unit_driver augment  checks that every augmented image of 2000 is its
 *       source cropped from the padded image at an offset within the
 *       padding and flipped or not, that every offset and both flips
 *       occur, and that a reseeded stream repeats itself. */
#define UNIT_NO_MAIN
#include "unit.c"

static int clip(double value, double norm)
{
    unit *m = unit_new(1);
    double *g = unit_grads(m);
    long ranges[2] = {0, UNIT_PARAM_COUNT};
    nnc_train_config cfg = {.clip_value = value, .clip_norm = norm,
                            .grad_ranges = ranges, .ngrad_ranges = 1};
    double before[UNIT_PARAM_COUNT];
    for (long i = 0; i < UNIT_PARAM_COUNT; i++)
        g[i] = before[i] = sin(0.37 * (double)i) * (1 + (double)(i % 7));
    nnc__clip(&cfg, g);
    for (long i = 0; i < UNIT_PARAM_COUNT; i++)
        printf("%.17g %.17g\n", before[i], g[i]);
    unit_free(m);
    return 0;
}

/* Whether out is src cropped at (dy, dx) of the image padded by pad with
 * `fill`, then flipped when flip. */
static int matches(const double *src, const double *out, int dy, int dx,
                   int flip, int pad, double fill)
{
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            int si = i + dy - pad, sj = (flip ? 5 - j : j) + dx - pad;
            double want = si >= 0 && si < 6 && sj >= 0 && sj < 6
                              ? src[si * 6 + sj] : fill;
            if (out[i * 6 + j] != want)
                return 0;
        }
    return 1;
}

static int augment(void)
{
    const int pad = 2;
    nnc_train_config cfg = {.img_c = 1, .img_h = 6, .img_w = 6, .shift = 0.5f,
                            .aug_crop = 1, .aug_padding = pad, .aug_flip = 0.5,
                            .norm_channels = 1, .norm_mean = {0.25f},
                            .norm_std = {0.5f}};
    const double fill = (0.5 - 0.25) / 0.5;
    double x[UNIT_BATCH * 36], src[UNIT_BATCH * 36], first[UNIT_BATCH * 36];
    double scratch[36];
    int seen[5][5][2] = {{{0}}};
    nnc_rng rng, again;
    nnc_rng_seed(&rng, 7);
    nnc_rng_seed(&again, 7);
    for (int round = 0; round < 2000 / UNIT_BATCH; round++) {
        for (int i = 0; i < UNIT_BATCH * 36; i++)
            x[i] = src[i] = 1 + i % 36 + 100 * (i / 36) + round;
        nnc__augment(&cfg, &rng, x, scratch);
        if (round == 0) {
            memcpy(first, x, sizeof x);
            memcpy(x, src, sizeof x);
            nnc__augment(&cfg, &again, x, scratch);
            if (memcmp(first, x, sizeof x)) {
                printf("FAIL: the same seed gives different augmentations\n");
                return 1;
            }
        }
        for (int b = 0; b < UNIT_BATCH; b++) {
            int found = 0;
            for (int dy = 0; dy <= 2 * pad; dy++)
                for (int dx = 0; dx <= 2 * pad; dx++)
                    for (int f = 0; f < 2; f++)
                        if (matches(src + b * 36, x + b * 36, dy, dx, f, pad,
                                    fill)) {
                            seen[dy][dx][f]++;
                            found = 1;
                        }
            if (!found) {
                printf("FAIL: image %d of round %d is no crop or flip of its "
                       "source\n", b, round);
                return 1;
            }
        }
    }
    for (int dy = 0; dy <= 2 * pad; dy++)
        for (int dx = 0; dx <= 2 * pad; dx++)
            for (int f = 0; f < 2; f++)
                if (!seen[dy][dx][f]) {
                    printf("FAIL: offset (%d, %d) %s never drawn\n", dy, dx,
                           f ? "flipped" : "unflipped");
                    return 1;
                }
    printf("ok: %d images, each a crop within the padding, flipped or not; "
           "all %d choices drawn\n", 2000 / UNIT_BATCH * UNIT_BATCH,
           (2 * pad + 1) * (2 * pad + 1) * 2);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "clip"))
        return clip(atof(argv[2]), atof(argv[3]));
    if (argc == 2 && !strcmp(argv[1], "augment"))
        return augment();
    fprintf(stderr, "usage: unit_driver clip VALUE NORM | augment\n");
    return 2;
}
