"""smooth_torch.py — tests/train/smooth_driver.c's losses and gradients
recomputed with torch.nn.functional.cross_entropy(label_smoothing=eps).

usage: smooth_torch.py MANIFEST

Each line of MANIFEST is "LABEL|EPS|DRIVER-OUTPUT" (manifest.py). The model is one
dense layer, z = x W^T + b with W [5, 4] then b [5] in the parameter
block (nnc's order, which is torch's state_dict order). Class labels
are the driver's integer "y" lines, probability targets its real ones.
nnc's loss from an explicit softmax (from_logits = false) is compared
with torch's loss on the logits: the two are the same function while no
probability is clipped, as none is on this data. Compares the training
loss, the evaluation loss and every gradient with a relative tolerance
of 1e-12 (f64; relative to the largest magnitude of each). Prints one
line per case, "ok: ..." or "FAIL ...", then "N passed, N failed".
"""
import sys

import torch

from manifest import run

torch.set_default_dtype(torch.float64)
C, D = 5, 4
TOL = 1e-12


def read(path):
    vals = {"x": {}, "y": {}, "w": {}, "g": {}}
    ints = True
    for line in open(path):
        parts = line.split()
        if parts[0] in ("loss", "eval_loss"):
            vals[parts[0]] = float(parts[1])
            continue
        if parts[0] == "y" and not parts[2].lstrip("-").isdigit():
            ints = False
        vals[parts[0]][int(parts[1])] = float(parts[2])
    flat = {k: [v[i] for i in range(len(v))] for k, v in vals.items()
            if isinstance(v, dict)}
    return flat, vals["loss"], vals["eval_loss"], ints


def check(spec, path):
    eps = float(spec)
    flat, loss, eval_loss, classes = read(path)
    x = torch.tensor(flat["x"]).reshape(-1, D)
    n = x.shape[0]
    if classes:
        y = torch.tensor([int(v) for v in flat["y"]], dtype=torch.long)
    else:
        y = torch.tensor(flat["y"]).reshape(n, C)
    w = torch.tensor(flat["w"][:C * D]).reshape(C, D).requires_grad_()
    b = torch.tensor(flat["w"][C * D:]).requires_grad_()
    z = x @ w.T + b
    ref = torch.nn.functional.cross_entropy(z, y, label_smoothing=eps)
    ref.backward()
    want = torch.cat([w.grad.reshape(-1), b.grad]).tolist()
    have = flat["g"]
    if len(have) != len(want):
        return f"{len(have)} gradients, torch has {len(want)}"
    if not torch.isfinite(ref):
        return f"torch's loss is {ref.item()}"
    big = max(abs(v) for v in want)
    worst = max(abs(h - t) for h, t in zip(have, want)) / big
    for label, got in (("loss", loss), ("eval loss", eval_loss)):
        err = abs(got - ref.item()) / abs(ref.item())
        if err > TOL:
            return f"{label}: nnc {got!r} torch {ref.item()!r} (rel {err:.2e})"
    if worst > TOL:
        return f"gradients differ from torch's by {worst:.2e} of the largest"
    print(f"ok: loss {loss:.10g} (max |z| {z.abs().max().item():.4g}), "
          f"{len(want)} gradients, worst relative difference {worst:.1e}", end="")
    return None


sys.exit(run(check))
