/* plan.c — the memory plan of one program.
 *
 * requires: kernels formed (fuse), ops in schedule order.
 * guarantees: Plan.runs marks the ops the program executes; every
 * SG_ARENA value it computes gets an offset in one arena such that no
 * two values alive at the same time overlap. A value is alive from the
 * op that writes it to the last op that reads it (through views too);
 * the program's results (loss, output) stay alive to the end. Offsets
 * are multiples of 16 elements so kernels see 64-byte aligned rows.
 *
 * Placement is first-fit in schedule order: simple, deterministic, and
 * close to optimal for the chain-shaped lifetimes of a training step. */
#include "nnc.h"

#include <string.h>

enum { ALIGN_ELEMS = 16 };

/* The value whose memory a view (or chain of views) shares. */
static int storage_root(const Graph *g, int v)
{
    while (g->ops[v].storage == SG_VIEW)
        v = g->ops[v].in[0];
    return v;
}

static void mark_needed(const Graph *g, bool *runs, int v)
{
    /* iterative: graphs can be long chains */
    int *stack = ARENA_ARRAY(g->arena, int, g->nops);
    int top = 0;
    stack[top++] = v;
    while (top) {
        int u = stack[--top];
        if (runs[u])
            continue;
        runs[u] = true;
        for (int i = 0; i < g->ops[u].nin; i++)
            if (!runs[g->ops[u].in[i]])
                stack[top++] = g->ops[u].in[i];
    }
}

static void choose_ops(const Graph *g, Plan *p)
{
    mark_needed(g, p->runs, g->output);
    if (p->kind == PROG_PREDICT)
        return;
    mark_needed(g, p->runs, g->loss);
    if (p->kind == PROG_EVAL)
        return;
    for (int i = 0; i < g->nops; i++)
        if (g->ops[i].phase != PH_FORWARD)
            mark_needed(g, p->runs, i);
    /* the backward graph never reads the loss itself, but train_step
     * returns it */
}

typedef struct Block {
    long offset, size;
    int last_use;
} Block;

static long round_up(long n)
{
    return (n + ALIGN_ELEMS - 1) / ALIGN_ELEMS * ALIGN_ELEMS;
}

/* Lowest offset where `size` elements fit between the live blocks. */
static long first_fit(Block *live, int nlive, long size)
{
    long at = 0;
    for (;;) {
        bool moved = false;
        for (int i = 0; i < nlive; i++)
            if (live[i].offset < at + size && at < live[i].offset + live[i].size) {
                at = live[i].offset + live[i].size;
                moved = true;
            }
        if (!moved)
            return at;
    }
}

Plan *plan_program(Arena *a, const Graph *g, const Kernels *ks, ProgKind kind)
{
    (void)ks;
    Plan *p = ARENA_NEW(a, Plan);
    p->kind = kind;
    p->runs = ARENA_ARRAY(a, bool, g->nops);
    p->offset = ARENA_ARRAY(a, long, g->nops);
    choose_ops(g, p);

    int *last_use = ARENA_ARRAY(a, int, g->nops);
    for (int i = 0; i < g->nops; i++)
        last_use[i] = p->runs[i] ? i : -1;
    for (int i = 0; i < g->nops; i++) {
        if (!p->runs[i])
            continue;
        for (int j = 0; j < g->ops[i].nin; j++) {
            int r = storage_root(g, g->ops[i].in[j]);
            if (last_use[r] < i)
                last_use[r] = i;
        }
    }
    last_use[storage_root(g, g->output)] = g->nops;
    if (kind != PROG_PREDICT)
        last_use[g->loss] = g->nops;

    Block *live = ARENA_ARRAY(a, Block, g->nops);
    int nlive = 0;
    for (int i = 0; i < g->nops; i++) {
        if (!p->runs[i])
            continue;
        /* memory read for the last time before op i is free again */
        int keep = 0;
        for (int j = 0; j < nlive; j++)
            if (live[j].last_use >= i)
                live[keep++] = live[j];
        nlive = keep;
        const IrOp *o = &g->ops[i];
        if (o->storage == SG_VIEW) {
            p->offset[i] = p->offset[storage_root(g, i)];
            continue;
        }
        if (o->storage != SG_ARENA)
            continue;
        long size = round_up(shape_elems(&o->shape));
        long at = first_fit(live, nlive, size);
        live[nlive++] = (Block){at, size, last_use[i]};
        p->offset[i] = at;
        if (at + size > p->arena_elems)
            p->arena_elems = at + size;
    }
    return p;
}
