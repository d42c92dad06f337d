/* rt_progress.c — timing and the trainer's live progress line.
 *
 * The live line is for a person watching a terminal; logs and pipes get
 * nothing from here (the trainer prints one summary line per epoch
 * itself), so redirected output stays free of carriage returns. */
#include "nnc_rt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Redrawing more often than this only costs time and flickers. */
#define NNC__PG_INTERVAL 0.1

NNC_RT double nnc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

NNC_RT void nnc_format_duration(double seconds, char *buf, size_t len)
{
    if (!buf || len == 0)
        return;
    /* Early in a run the rate can be 0 or wild; show that we do not know
     * rather than a number like 2562047788015:12:55. */
    if (!(seconds >= 0.0) || seconds > 1e8) {
        snprintf(buf, len, "--:--");
        return;
    }
    long long s = (long long)(seconds + 0.5);
    long long h = s / 3600, m = s / 60 % 60, sec = s % 60;
    if (h)
        snprintf(buf, len, "%lld:%02lld:%02lld", h, m, sec);
    else
        snprintf(buf, len, "%lld:%02lld", m, sec);
}

NNC_RT void nnc_progress_begin(nnc_progress *p, FILE *out, int epoch, int epochs,
                               long steps_per_epoch, int batch, int quiet)
{
    if (epoch <= 1 || p->run_seconds < 0 || p->run_steps < 0) {
        p->run_seconds = 0;
        p->run_steps = 0;
    }
    p->out = out;
    p->epoch = epoch;
    p->epochs = epochs;
    p->steps_per_epoch = steps_per_epoch;
    p->batch = batch;
    p->live = !quiet && out && isatty(fileno(out));
    p->epoch_start = nnc_now();
    p->last_draw = p->epoch_start - NNC__PG_INTERVAL;
    p->drawn_len = 0;
    p->steps = 0;
    p->loss_sum = 0;
    p->mean_loss = NAN;
    p->seconds = 0;
    p->samples_per_s = 0;
}

/* Seconds left in the whole run, from the average time per step of all
 * steps so far (finished epochs included), or -1 when unknown. */
NNC_RT double nnc__pg_eta(const nnc_progress *p, long step, double elapsed)
{
    long done = p->run_steps + step;
    if (p->steps_per_epoch <= 0 || done <= 0)
        return -1;
    double per_step = (p->run_seconds + elapsed) / (double)done;
    double remaining = (double)(p->epochs - p->epoch) * (double)p->steps_per_epoch +
                       (double)(p->steps_per_epoch - step);
    return remaining > 0 ? remaining * per_step : 0;
}

NNC_RT void nnc__pg_draw(nnc_progress *p, long step, double now)
{
    double elapsed = now - p->epoch_start;
    double rate = elapsed > 0 ? (double)step * p->batch / elapsed : 0;
    char eta[32], line[200];
    nnc_format_duration(nnc__pg_eta(p, step, elapsed), eta, sizeof eta);
    int len;
    if (p->steps_per_epoch > 0)
        len = snprintf(line, sizeof line, "epoch %d/%d  step %ld/%ld  loss %.4f  %.0f samples/s  ETA %s",
                       p->epoch, p->epochs, step, p->steps_per_epoch, p->loss_sum / (double)p->steps,
                       rate, eta);
    else
        len = snprintf(line, sizeof line, "epoch %d/%d  step %ld  loss %.4f  %.0f samples/s",
                       p->epoch, p->epochs, step, p->loss_sum / (double)p->steps, rate);
    if (len < 0)
        return;
    if (len >= (int)sizeof line)
        len = (int)sizeof line - 1;
    /* Pad with spaces to erase the tail of a longer previous line. */
    int pad = p->drawn_len > len ? p->drawn_len - len : 0;
    fprintf(p->out, "\r%s%*s", line, pad, "");
    fflush(p->out);
    p->drawn_len = len;
}

NNC_RT void nnc_progress_step(nnc_progress *p, long step, double loss)
{
    p->steps++;
    p->loss_sum += loss;
    if (!p->live)
        return;
    double now = nnc_now();
    if (now - p->last_draw < NNC__PG_INTERVAL)
        return;
    p->last_draw = now;
    nnc__pg_draw(p, step, now);
}

NNC_RT void nnc_progress_end(nnc_progress *p)
{
    p->seconds = nnc_now() - p->epoch_start;
    p->mean_loss = p->steps ? p->loss_sum / (double)p->steps : NAN;
    p->samples_per_s = p->seconds > 0 ? (double)p->steps * p->batch / p->seconds : 0;
    p->run_seconds += p->seconds;
    p->run_steps += p->steps;
    if (p->drawn_len > 0) {
        fprintf(p->out, "\r%*s\r", p->drawn_len, "");
        fflush(p->out);
        p->drawn_len = 0;
    }
}
