/* fuse.c — groups ops into kernels.
 *
 * requires: the complete graph (forward, backward, update), verified.
 * guarantees: every op that computes something belongs to exactly one
 * kernel (IrOp.kernel); sources and views belong to none; kernels are
 * numbered in schedule order and named after the ops they hold.
 *
 * With fusion off every computing op is a kernel of its own and every
 * intermediate is materialised; that is the baseline --no-fuse shows. */
#include "nnc.h"

#include <string.h>

static bool computes(const IrOp *o)
{
    OpClass c = op_class[o->op];
    return (c != OC_SOURCE && c != OC_VIEW) || o->op == OP_FILL;
}

static const char *kernel_name(Graph *g, int index, const int *ops, int n)
{
    const IrOp *first = &g->ops[ops[0]];
    char buf[256];
    size_t at = (size_t)snprintf(buf, sizeof buf, "k%02d_%s", index,
                                 first->label ? first->label : "t");
    for (int i = 0; i < n && at < sizeof buf; i++)
        at += (size_t)snprintf(buf + at, sizeof buf - at, "_%s",
                               op_names[g->ops[ops[i]].op]);
    /* labels come from user names and parameter names: keep C identifiers */
    for (char *p = buf; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            *p = '_';
    return arena_strdup(g->arena, buf);
}

Kernels *fuse(Graph *g, bool enabled)
{
    (void)enabled; /* fusion rules arrive with the fusion pass proper */
    Kernels *ks = ARENA_NEW(g->arena, Kernels);
    ks->k = ARENA_ARRAY(g->arena, Kernel, g->nops);
    for (int i = 0; i < g->nops; i++) {
        IrOp *o = &g->ops[i];
        if (!computes(o))
            continue;
        Kernel *k = &ks->k[ks->n];
        k->ops = ARENA_ARRAY(g->arena, int, 1);
        k->ops[0] = i;
        k->nops = 1;
        k->first = i;
        k->name = kernel_name(g, ks->n, k->ops, 1);
        o->kernel = ks->n++;
    }
    return ks;
}
