/* optim.c — the optimizer, lowered into the IR.
 *
 * requires: autodiff has run (Param.grad set).
 * guarantees: one PH_UPDATE op per parameter that has a gradient,
 * reading the parameter, its gradient and its optimizer state (STATE
 * values in one contiguous state block, zero at start), writing the
 * parameter and state in place. The learning rate and the step count
 * are read at run time from the model, so schedules can change them. */
#include "nnc.h"

/* State `which` of every parameter forms one block the size of the
 * parameter block (Adam: all first moments, then all second moments),
 * so a fused update can sweep params, grads and state in one loop. */
static int add_state(Graph *g, int param, int which)
{
    Param *p = &g->params[param];
    int v = ir_add(g, OP_STATE, p->shape, NULL, 0, g->ops[p->value].loc,
                   g->ops[p->value].label);
    IrOp *o = &g->ops[v];
    o->phase = PH_UPDATE;
    o->storage = SG_STATE;
    o->param = param;
    o->offset = which * g->param_elems + p->offset;
    if (g->state_elems < (which + 1) * g->param_elems)
        g->state_elems = (which + 1) * g->param_elems;
    p->state[which] = v;
    return v;
}

void optim_lower(Graph *g, const OptimSpec *opt)
{
    for (int i = 0; i < g->nparams; i++) {
        Param *p = &g->params[i];
        if (p->grad < 0)
            continue;
        int in[4] = {p->value, p->grad, -1, -1};
        int nin = 2;
        OpKind op = OP_SGD_UPDATE;
        if (opt->kind == OPT_ADAM) {
            op = OP_ADAM_UPDATE;
            in[nin++] = add_state(g, i, 0);
            in[nin++] = add_state(g, i, 1);
        } else if (opt->momentum != 0) {
            in[nin++] = add_state(g, i, 0);
        }
        int u = ir_add(g, op, p->shape, in, nin, g->ops[p->value].loc,
                       g->ops[p->value].label);
        g->ops[u].phase = PH_UPDATE;
        g->ops[u].param = i;
        g->ops[u].attr.opt = *opt;
    }
}
