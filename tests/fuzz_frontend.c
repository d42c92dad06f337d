/* fuzz_frontend.c — libFuzzer harness over the whole front of nnc: parse,
 * train block, shape check, autodiff, optimizer, fusion, memory plan and
 * C emission, on arbitrary bytes. Diagnostics go to /dev/null; any crash, leak or
 * undefined behaviour is a bug. Build and run with `make fuzz`. */
#include "nnc.h"

#include <stdlib.h>
#include <string.h>

static FILE *sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!sink)
        sink = fopen("/dev/null", "w");
    Arena a = {0};
    char *text = arena_alloc(&a, size + 1);
    memcpy(text, data, size);
    Source src = {"fuzz.nn", text, size};
    Diag d;
    diag_init(&d, &src, sink);
    Program *p = parse_program(&a, &d, &src);
    if (p && p->models) {
        TrainSpec t;
        if (train_check(&a, &d, p, p->models, &t)) {
            Graph *g = shape_check(&a, &d, p, p->models, t.batch);
            if (g && train_check_data(&d, &t, g) && g->ops[g->loss].shape.rank == 0) {
                autodiff(g);
                optim_lower(g, &t.opt);
                if (!ir_verify(g, stderr))
                    abort();
                Kernels *ks = fuse(g, size % 2 == 0);
                Plan *plans[PROG__COUNT];
                for (int k = 0; k < PROG__COUNT; k++)
                    plans[k] = plan_program(&a, g, ks, (ProgKind)k);
                EmitOptions o = {.prefix = "fuzz", .source = "fuzz.nn",
                                 .header = "fuzz.h", .f64 = size % 3 == 0,
                                 .main = t.data != DATA_NONE, .fused = true};
                emit_c(sink, sink, g, ks, plans, &t, &o);
            }
        }
    }
    arena_free(&a);
    return 0;
}
