"""sched_torch.py — the learning rates trainers logged, against
torch.optim.lr_scheduler.

usage: sched_torch.py MANIFEST

Each line of MANIFEST is "LABEL|SCHEDULER-SPEC|METRICS.CSV". SCHEDULER-SPEC
is a Python expression over `opt` (an SGD optimizer with lr 0.1 and
momentum 0.9, as the train block's) and `lrs` (torch.optim.lr_scheduler)
building the scheduler; "plateau:NAME:" before it means ReduceLROnPlateau,
stepped with the epoch's figure NAME from the log. The lr of epoch e is
the optimizer's lr while it trains; then the scheduler steps. (A
scheduler stepped per optimizer step is the same here: the test's epochs
have one step each.) Relative tolerance 1e-12. Prints one line per case,
then "N passed, N failed".
"""
import csv
import sys
import warnings

import torch

from manifest import run

warnings.simplefilter("ignore")  # SequentialLR steps its schedulers with an epoch


def check(spec, path):
    metric = None
    if spec.startswith("plateau:"):
        _, metric, spec = spec.split(":", 2)
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    sched = eval(spec, {"torch": torch, "opt": opt, "lrs": torch.optim.lr_scheduler})
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return "no epochs in the log"
    worst = 0.0
    for e, row in enumerate(rows, 1):
        want = opt.param_groups[0]["lr"]
        have = float(row["lr"])
        err = abs(have - want) / abs(want) if want else abs(have)
        worst = max(worst, err)
        if int(row["epoch"]) != e or err > 1e-12:
            return f"epoch {row['epoch']}: lr {have!r}, torch {want!r} (rel {err:.1e})"
        opt.step()
        if metric:
            sched.step(float(row[metric]))
        else:
            sched.step()
    lrs = sorted({float(r["lr"]) for r in rows})
    print(f"ok: {len(rows)} epochs, {len(lrs)} distinct rates from {lrs[0]:.3g} "
          f"to {lrs[-1]:.3g}, worst relative difference {worst:.1e}", end="")
    return None


sys.exit(run(check))
