/* kill_save.c — a trainer killed with SIGKILL while it writes a
 * checkpoint never leaves a broken one: after each kill the file loads,
 * and holds exactly one of the two parameter sets that were being saved
 * in turn. Built by tests/e2e.sh against mnist_mlp compiled with
 * --prefix ks (a checkpoint of about 0.9 MB, so the kill often lands
 * mid-write). Also: a save into a directory that does not exist fails
 * with a message and leaves nothing behind. */
#define _POSIX_C_SOURCE 200809L
#include "ks.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 20 };

static void fill(float *w, float v)
{
    for (long i = 0; i < KS_PARAM_COUNT; i++)
        w[i] = v + (float)(i % 7);
}

static int matches(const float *w, float v)
{
    for (long i = 0; i < KS_PARAM_COUNT; i++)
        if (w[i] != v + (float)(i % 7))
            return 0;
    return 1;
}

/* Saves set A and set B in turn, forever, until killed. */
static void save_forever(const char *path)
{
    ks *m = ks_new(1);
    for (unsigned n = 0;; n++) {
        fill(ks_params(m), n % 2 ? 2.0f : 1.0f);
        if (ks_save(m, path)) {
            fprintf(stderr, "child: %s\n", ks_error(m));
            _exit(3);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", argv[1]);
    ks *m = ks_new(1);
    fill(ks_params(m), 1.0f);
    if (ks_save(m, path)) {
        fprintf(stderr, "first save: %s\n", ks_error(m));
        return 1;
    }
    int bad = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pid_t pid = fork();
        if (pid == 0)
            save_forever(path);
        struct timespec t = {0, (long)(1 + (round * 7919) % 23) * 1000000L};
        nanosleep(&t, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fill(ks_params(m), 0.0f);
        if (ks_load(m, path)) {
            fprintf(stderr, "round %d: the checkpoint does not load: %s\n", round,
                    ks_error(m));
            bad++;
        } else if (!matches(ks_params(m), 1.0f) && !matches(ks_params(m), 2.0f)) {
            fprintf(stderr, "round %d: the checkpoint holds a mix\n", round);
            bad++;
        }
    }
    /* a save that cannot happen reports why and leaves the old file */
    char nowhere[4200];
    snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/x.safetensors", argv[1]);
    if (ks_save(m, nowhere) == 0 || !strstr(ks_error(m), "no/such/dir")) {
        fprintf(stderr, "a save into a missing directory: '%s'\n", ks_error(m));
        bad++;
    }
    if (ks_load(m, path)) {
        fprintf(stderr, "the last good checkpoint is gone\n");
        bad++;
    }
    printf("kill_save: %d SIGKILLs during checkpoint writes, %d broken "
           "checkpoints\n", ROUNDS, bad);
    ks_free(m);
    return bad ? 1 : 0;
}
