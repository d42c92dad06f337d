# make_img.awk — a small image classification set for the trainer tests:
# N samples (-v n=80 -v seed=1) of 1x6x6 images, a bright 2x2 patch on a
# noisy background; the class is 1 when the patch is in the right half.
# One CSV line per sample: 36 pixel values, then the class.
function rnd() { state = (state * 1103515245 + 12345) % 2147483648; return state / 2147483648 }
BEGIN {
    state = seed
    for (s = 0; s < n; s++) {
        py = int(rnd() * 5); px = int(rnd() * 5)
        line = ""
        for (i = 0; i < 6; i++)
            for (j = 0; j < 6; j++) {
                v = rnd() * 0.3
                if (i >= py && i <= py + 1 && j >= px && j <= px + 1) v += 0.7
                line = line sprintf("%.3f,", v)
            }
        print line (px >= 2 ? 1 : 0)
    }
}
