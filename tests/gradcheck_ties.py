"""gradcheck_ties.py — repeats in PyTorch (float64) the gradient that
tests/gradcheck_ties.c took with an nnc model written by
tests/gradcheck_gen.py, from the same weights and batch, and compares the
loss and every gradient. The weights and inputs sit on a grid of small
numbers, so relu inputs are exactly 0 and max-pooling windows hold
several equal maxima: there the gradient is a convention, and nnc must
follow PyTorch's. Prints how many such points the step went through.

Usage: gradcheck_ties.py MODEL.json DIR [--fused]
(DIR is where the driver ran). With --fused, the gradient of a
cross-entropy on an explicit softmax is taken without the 1e-7 clamp of
its probabilities, as nnc's fused rule softmax_xent_grad computes it
(docs/language.md, section 7); the loss keeps the clamp in both. That
matters only for probabilities below 1e-7 (seed 112).
"""
import json
import struct
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
TOL = 1e-7  # relative to the largest magnitude of each tensor (and 1); the
# two sum in different orders, which logits of thousands on the grid
# (seed 115) turn into 5e-10; a wrong convention costs 1e-3 and more


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F64", (k, v["dtype"])
        a, b = v["data_offsets"]
        vals = struct.unpack("<%dd" % ((b - a) // 8), data[a:b])
        out[k] = torch.tensor(vals).reshape(v["shape"])
    return out


def main():
    spec = json.load(open(sys.argv[1]))
    d = sys.argv[2]
    fused = "--fused" in sys.argv[3:]
    w = read_safetensors(d + "/w.safetensors")
    for t in w.values():
        t.requires_grad_(True)
    B = spec["batch"]
    shape = [B] + spec["input"]
    raw = open(d + "/x.bin", "rb").read()
    x = torch.tensor(struct.unpack("<%dd" % (len(raw) // 8), raw)).reshape(shape)
    raw = open(d + "/y.bin", "rb").read()
    C = spec["classes"]
    if spec["loss"] in ("ce_logits", "ce_probs"):
        y = torch.tensor(struct.unpack("<%di" % (len(raw) // 4), raw), dtype=torch.long)
    else:
        y = torch.tensor(struct.unpack("<%dd" % (len(raw) // 8), raw)).reshape(B, C)

    at_zero = 0  # relu and leaky relu inputs exactly 0
    tied = 0     # max-pooling windows whose maximum is not unique
    h = x
    for L in spec["layers"]:
        op = L["op"]
        if op == "conv":
            n = L["name"]
            pt, pb, pl, pr = L["pad"]
            h = F.conv2d(F.pad(h, (pl, pr, pt, pb)), w[n + ".weight"],
                         w[n + ".bias"] if L["bias"] else None, stride=tuple(L["stride"]))
        elif op == "dense":
            n = L["name"]
            h = F.linear(h, w[n + ".weight"], w[n + ".bias"] if L["bias"] else None)
        elif op == "bn":
            n = L["name"]
            h = F.batch_norm(h, w[n + ".running_mean"].detach().clone(),
                             w[n + ".running_var"].detach().clone(),
                             w[n + ".weight"], w[n + ".bias"], training=True, eps=1e-5)
        elif op in ("relu", "leaky_relu"):
            at_zero += int((h == 0).sum())
            h = F.relu(h) if op == "relu" else F.leaky_relu(h, L["alpha"])
        elif op == "sigmoid":
            h = torch.sigmoid(h)
        elif op == "tanh":
            h = torch.tanh(h)
        elif op == "maxpool2d":
            k, s = tuple(L["size"]), tuple(L["stride"])
            cols = F.unfold(h.detach(), k, stride=s)
            cols = cols.reshape(h.shape[0], h.shape[1], k[0] * k[1], -1)
            top = cols.max(dim=2, keepdim=True).values
            tied += int(((cols == top).sum(dim=2) > 1).sum())
            h = F.max_pool2d(h, k, s)
        elif op == "avgpool2d":
            h = F.avg_pool2d(h, tuple(L["size"]), tuple(L["stride"]))
        elif op == "global_avgpool":
            h = h.mean(dim=(2, 3))
        elif op == "flatten":
            h = h.flatten(1)
        elif op == "swish":
            h = h * torch.sigmoid(h)
        elif op == "tanh_res":
            h = torch.tanh(h) + 0.5 * h
        elif op == "div_exp":
            h = h / (torch.exp(h) + torch.exp(-h))
        elif op == "log_sig":
            h = torch.log(torch.sigmoid(h)) - h
        elif op == "scale":
            h = h * L["by"]
        else:
            raise SystemExit("unknown layer " + op)

    loss_kind, eps = spec["loss"], spec["smoothing"]
    value = None  # the loss nnc reports, when not loss.item()
    if loss_kind in ("ce_logits", "ce_soft"):
        loss = F.cross_entropy(h, y, label_smoothing=eps)
    elif loss_kind in ("ce_probs", "ce_soft_probs"):
        t = F.one_hot(y, C).to(h.dtype) if loss_kind == "ce_probs" else y
        t = (1 - eps) * t + eps / C
        q = torch.softmax(h, dim=1)
        loss = -(t * torch.log(torch.clamp(q, min=1e-7))).sum() / B
        if fused:  # the same loss, the gradient of the unclamped one
            value = loss.item()
            loss = -(t * torch.log(q)).sum() / B
    elif loss_kind == "bce_logits":
        loss = F.binary_cross_entropy_with_logits(h, y)
    elif loss_kind == "bce":
        loss = F.binary_cross_entropy(torch.sigmoid(h), y)
    else:
        loss = F.mse_loss(torch.tanh(h), y)
    loss.backward()
    if value is None:
        value = loss.item()

    vals = [float(v) for v in open(d + "/nnc.txt")]
    worst, where = abs(vals[0] - value) / max(1, abs(value)), "loss"
    at = 1
    for k, t in w.items():  # checkpoint order is the gradient block's order
        n = t.numel()
        ref = t.grad.flatten() if t.grad is not None else torch.zeros(n)
        got = torch.tensor(vals[at:at + n])
        at += n
        err = (got - ref).abs().max().item() / max(1, ref.abs().max().item())
        if err > worst:
            worst, where = err, k
    assert at == len(vals), (at, len(vals))
    ok = worst <= TOL
    print("%s: loss %.6g, %d relu inputs at 0, %d max-pool windows with a tie; "
          "worst relative difference from PyTorch %.3g (%s)%s"
          % (spec["model"], value, at_zero, tied, worst, where, "" if ok else ", above %g" % TOL))
    sys.exit(0 if ok else 1)


main()
