/* emit_profile.c — `nnc --profile`: the generated training programs time
 * each kernel call, and <prefix>_profile_print says where the steps' time
 * went, kernel by kernel, under the names and source lines the kernels'
 * comments give.
 *
 * requires: kernels formed and scheduled; emit_c.c calls these while
 * writing model.c and model.h, only when EmitOptions.profile is set.
 * guarantees: without --profile nothing here is emitted, so the generated
 * code does not change; with it the kernels are the same code and compute
 * the same bits, and the calls of forward_backward() and update() are
 * timed from the calling thread: a kernel's time includes starting its
 * threads and waiting for the slowest one, which is what a step pays.
 *
 * One clock reading per call: the reading after a kernel is the start of
 * the next, so the little between calls (a flag reset, dropout's seed)
 * counts to the kernel after it. */
#include "nnc.h"

#include <string.h>

/* "9" or "9-11": the source lines of a kernel's member ops */
static void kernel_lines(const Graph *g, const Kernel *k, char *buf,
                         size_t len)
{
    int lo = 0, hi = 0;
    for (int i = 0; i < k->nops; i++) {
        int line = g->ops[k->ops[i]].loc.line;
        if (line <= 0)
            continue;
        if (!lo || line < lo)
            lo = line;
        if (line > hi)
            hi = line;
    }
    if (!lo)
        snprintf(buf, len, "-");
    else if (lo == hi)
        snprintf(buf, len, "%d", lo);
    else
        snprintf(buf, len, "%d-%d", lo, hi);
}

void emit_profile_decls(Emitter *e, const char *p)
{
    emit_blank(e);
    emit(e, "/* nnc --profile: each kernel call of forward and backward and "
         "of the update,");
    emit(e, " * timed and summed over every model of this type in the "
         "process (not thread-safe:");
    emit(e, " * profile one training loop at a time). _print writes a table, "
         "a line a kernel,");
    emit(e, " * of the time since the last _reset (or the start). */");
    emit(e, "void %s_profile_reset(void);", p);
    emit(e, "void %s_profile_print(FILE *out);", p);
}

/* The counters, the kernels' names and lines, the clock. */
void emit_profile_state(Emitter *e, const Graph *g, const Kernels *ks)
{
    emit(e, "/* ---- nnc --profile: the time of each kernel's calls ---- */");
    emit_blank(e);
    int width = (int)strlen("all kernels");
    for (int i = 0; i < ks->n; i++)
        if ((int)strlen(ks->k[i].name) > width)
            width = (int)strlen(ks->k[i].name);
    emit(e, "enum { NNC_PROF_KERNELS = %d, NNC_PROF_WIDTH = %d };", ks->n,
         width);
    emit(e, "static double nnc_prof_seconds[NNC_PROF_KERNELS];");
    emit(e, "static long nnc_prof_calls[NNC_PROF_KERNELS];");
    emit(e, "static long nnc_prof_steps; /* forward_backward calls */");
    emit_open(e, "static const char *const nnc_prof_names[NNC_PROF_KERNELS] =");
    for (int i = 0; i < ks->n; i++)
        emit(e, "\"%s\",", ks->k[i].name);
    emit_close(e, ";");
    emit(e, "/* the kernels' lines in %s */", e->o->source);
    emit_open(e, "static const char *const nnc_prof_lines[NNC_PROF_KERNELS] =");
    for (int i = 0; i < ks->n; i++) {
        char lines[32];
        kernel_lines(g, &ks->k[i], lines, sizeof lines);
        emit(e, "\"%s\",", lines);
    }
    emit_close(e, ";");
    emit_blank(e);
    emit_open(e, "static double nnc_prof_now(void)");
    emit(e, "struct timespec t;");
    emit(e, "clock_gettime(CLOCK_MONOTONIC, &t);");
    emit(e, "return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;");
    emit_close(e, NULL);
    emit_blank(e);
    emit(e, "/* kernel k ran from `since` until now; returns now, the start "
         "of the next call */");
    emit_open(e, "static double nnc_prof_add(int k, double since)");
    emit(e, "const double now = nnc_prof_now();");
    emit(e, "nnc_prof_seconds[k] += now - since;");
    emit(e, "nnc_prof_calls[k]++;");
    emit(e, "return now;");
    emit_close(e, NULL);
    emit_blank(e);
}

/* Before a program's first timed call. */
void emit_profile_start(Emitter *e)
{
    emit(e, "double nnc_t = nnc_prof_now(); /* --profile */");
}

/* After each timed call. */
void emit_profile_after_call(Emitter *e, const Kernel *k)
{
    emit(e, "nnc_t = nnc_prof_add(%d, nnc_t);", k->index);
}

/* A timed program's last lines; `step`: forward_backward's, which counts
 * the steps the table divides by. The cast keeps a program without
 * calls (an update with every parameter frozen) free of a warning. */
void emit_profile_end(Emitter *e, bool step)
{
    emit(e, "(void)nnc_t;");
    if (step)
        emit(e, "nnc_prof_steps++;");
}

void emit_profile_api(Emitter *e, const char *p)
{
    emit_open(e, "void %s_profile_reset(void)", p);
    emit(e, "memset(nnc_prof_seconds, 0, sizeof nnc_prof_seconds);");
    emit(e, "memset(nnc_prof_calls, 0, sizeof nnc_prof_calls);");
    emit(e, "nnc_prof_steps = 0;");
    emit_close(e, NULL);
    emit_blank(e);
    emit(e, "/* In schedule order. us/step divides by the training steps: a "
         "step that is not");
    emit(e, " * finite skips the update, whose kernels then have fewer calls "
         "than steps. */");
    emit_open(e, "void %s_profile_print(FILE *out)", p);
    emit(e, "double total = 0;");
    emit_open(e, "for (int k = 0; k < NNC_PROF_KERNELS; k++)");
    emit(e, "total += nnc_prof_seconds[k];");
    emit_close(e, NULL);
    emit_open(e, "if (nnc_prof_steps == 0 || total <= 0)");
    emit(e, "fprintf(out, \"profile: no training step timed\\n\");");
    emit(e, "return;");
    emit_close(e, NULL);
    emit(e, "const double steps = (double)nnc_prof_steps;");
    emit(e, "fprintf(out, \"profile: %%ld training steps, %%.4f ms a step in "
         "kernels (each call timed by its caller)\\n\", nnc_prof_steps, "
         "total * 1e3 / steps);");
    emit(e, "fprintf(out, \"%%-*s %%7s %%9s %%10s %%7s\\n\", NNC_PROF_WIDTH, "
         "\"kernel\", \"line\", \"calls\", \"us/step\", \"share\");");
    emit_open(e, "for (int k = 0; k < NNC_PROF_KERNELS; k++)");
    emit_open(e, "if (nnc_prof_calls[k])");
    emit(e, "fprintf(out, \"%%-*s %%7s %%9ld %%10.2f %%6.1f%%%%\\n\", "
         "NNC_PROF_WIDTH, nnc_prof_names[k], nnc_prof_lines[k], nnc_prof_calls[k], "
         "nnc_prof_seconds[k] * 1e6 / steps, 100 * nnc_prof_seconds[k] / "
         "total);");
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit(e, "fprintf(out, \"%%-*s %%7s %%9s %%10.2f %%6.1f%%%%\\n\", "
         "NNC_PROF_WIDTH, \"all kernels\", \"\", \"\", total * 1e6 / steps, 100.0);");
    emit_close(e, NULL);
    emit_blank(e);
}
