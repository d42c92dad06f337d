"""gradcheck_gen.py — writes a random model for the gradient check.

Usage: gradcheck_gen.py SEED DIR
writes DIR/gr_SEED.nn (the model and a train block with its batch) and
DIR/gr_SEED.json (the same model as a list of layers, for
gradcheck_ties.py to rebuild it in PyTorch). Everything is drawn from
random.Random(SEED), so a seed names one model on every machine.

The model is valid by construction: the generator tracks the per-sample
shape through every layer with the shape rules of docs/language.md
(conv2d: OH = (H + PT + PB - KH) // SH + 1, 'same' padding split with the
odd pixel at the bottom and right; pools: OH = (H - KH) // SH + 1;
batchnorm needs more than one value per channel in a batch) and only
draws layers that fit.

Drawn: a dense stack or a convolutional stack (kernel, stride, padding
valid/same/pixels/pairs, channels, bias or not) with batch norm, max or
average pooling (overlapping or not), global average pooling, the
activations, an elementwise chain (h * sigmoid(h), tanh(h) + 0.5 * h,
h / (exp(h) + exp(-h)), log(sigmoid(h)) - h), every
loss (cross-entropy from logits or probabilities, class or soft targets,
label smoothing; bce; bce from logits; mse), and two edge cases: a batch
of 1 and logits scaled to hundreds (up to about +-1000).
"""
import json
import random
import sys

ACTS = ["relu", "sigmoid", "tanh", "leaky_relu", "none"]


def act_text(act, alpha):
    if act == "none":
        return ""
    if act == "leaky_relu":
        return " |> leaky_relu(alpha = %g)" % alpha
    return " |> " + act


def pair_text(p):
    return str(p[0]) if p[0] == p[1] else "[%d, %d]" % p


def gen(seed):
    r = random.Random(seed)
    lines = []        # statements of the model block
    layers = []       # the same, for PyTorch
    count = {"conv": 0, "fc": 0, "bn": 0}
    batch = r.choice([1, 1, 2, 3, 4])

    def name(kind):
        count[kind] += 1
        return "%s%d" % (kind, count[kind])

    def activation():
        act = r.choice(ACTS)
        alpha = r.choice([0.01, 0.1, 0.3])
        if act != "none":
            layers.append({"op": act, "alpha": alpha})
        return act_text(act, alpha)

    def maybe_bn(channels, per_channel):
        # a variance needs more than one value per channel in the batch
        if batch * per_channel > 1 and r.random() < 0.35:
            n = name("bn")
            momentum = r.choice([0.1, 0.2])
            layers.append({"op": "bn", "name": n, "channels": channels})
            return ' |> batchnorm(momentum = %g, name = "%s")' % (momentum, n)
        return ""

    # the variants of the last elementwise chain come from a stream of
    # their own, so that adding one leaves every other draw of a seed alone
    r2 = random.Random(seed * 7919 + 1)

    def maybe_ewise():
        kind = r.choice(["none", "none", "swish", "tanh_res"])
        if kind == "tanh_res":
            kind = r2.choice(["tanh_res", "div_exp", "log_sig"])
        if kind == "swish":
            lines.append("    h = h * sigmoid(h)")
        elif kind == "tanh_res":
            lines.append("    h = tanh(h) + 0.5 * h")
        elif kind == "div_exp":  # h / (2 cosh h): exp, negation, division
            lines.append("    h = h / (exp(h) + exp(-h))")
        elif kind == "log_sig":  # log of a value in (0, 1), minus h
            lines.append("    h = log(sigmoid(h)) - h")
        if kind != "none":
            layers.append({"op": kind})

    wide = False
    if r.random() < 0.6:
        # convolutional stack
        c, hh, ww = r.randint(1, 3), r.randint(4, 9), r.randint(4, 9)
        lines.append("    input  x : [%d, %d, %d]" % (c, hh, ww))
        shape = [c, hh, ww]
        first = True
        for _ in range(r.randint(1, 3)):
            for _ in range(20):  # draw until the kernel fits
                kernel = (r.randint(1, 3), r.randint(1, 3)) if r.random() < 0.3 else (r.randint(1, 3),) * 2
                stride = (r.randint(1, 2), r.randint(1, 2)) if r.random() < 0.2 else (r.choice([1, 1, 2]),) * 2
                pk = r.choice(["valid", "same", "pixels", "pair"])
                h, w = shape[1], shape[2]
                if pk == "valid":
                    pad = (0, 0, 0, 0)
                    ptext = ""
                elif pk == "same":
                    oh, ow = -(-h // stride[0]), -(-w // stride[1])
                    th = max((oh - 1) * stride[0] + kernel[0] - h, 0)
                    tw = max((ow - 1) * stride[1] + kernel[1] - w, 0)
                    pad = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
                    ptext = ", padding = same"
                elif pk == "pixels":
                    p = r.randint(0, 2)
                    pad = (p, p, p, p)
                    ptext = ", padding = %d" % p
                else:
                    ph, pw = r.randint(0, 2), r.randint(0, 2)
                    pad = (ph, ph, pw, pw)
                    ptext = ", padding = [%d, %d]" % (ph, pw)
                if h + pad[0] + pad[1] >= kernel[0] and w + pad[2] + pad[3] >= kernel[1]:
                    break
            else:
                break
            oh = (h + pad[0] + pad[1] - kernel[0]) // stride[0] + 1
            ow = (w + pad[2] + pad[3] - kernel[1]) // stride[1] + 1
            filters = r.randint(1, 4)
            bias = r.random() < 0.7
            n = name("conv")
            text = "    h = conv2d(%s, %d, kernel = %s%s%s%s, name = \"%s\")" % (
                "x" if first else "h", filters, pair_text(kernel),
                "" if stride == (1, 1) else ", stride = " + pair_text(stride), ptext,
                "" if bias else ", bias = false", n)
            first = False
            layers.append({"op": "conv", "name": n, "in": shape[0], "out": filters,
                           "kernel": kernel, "stride": stride, "pad": pad, "bias": bias})
            shape = [filters, oh, ow]
            text += maybe_bn(filters, oh * ow)
            text += activation()
            lines.append(text)
            if min(oh, ow) >= 2 and r.random() < 0.5:
                kind = r.choice(["maxpool2d", "maxpool2d", "avgpool2d"])
                size = (r.randint(2, min(3, oh)), r.randint(2, min(3, ow)))
                if r.random() < 0.6:
                    size = (min(size),) * 2
                stride = (r.randint(1, size[0]), r.randint(1, size[1]))
                if r.random() < 0.5:
                    stride = size
                lines.append("    h = %s(h, %s%s)" % (kind, pair_text(size),
                             "" if stride == size else ", stride = %s" % pair_text(stride)))
                layers.append({"op": kind, "size": size, "stride": stride})
                shape = [shape[0], (shape[1] - size[0]) // stride[0] + 1,
                         (shape[2] - size[1]) // stride[1] + 1]
        if r.random() < 0.3:
            lines.append("    h = global_avgpool(h)")
            layers.append({"op": "global_avgpool"})
            features = shape[0]
        else:
            lines.append("    h = flatten(h)")
            layers.append({"op": "flatten"})
            features = shape[0] * shape[1] * shape[2]
    else:
        # dense stack; on a fifth of the seeds 32 inputs and a first layer
        # of 16 units, whose weight gradient is then one that rule
        # grad_tail hands out in bands (whole bands of 8 rows, 16 columns
        # or more). That choice has a stream of its own, and the values it
        # replaces are still drawn, so every other draw stays the seed's.
        wide = random.Random(seed * 7919 + 1).random() < 0.2
        features = r.randint(1, 8)
        if wide:
            features = 32
        lines.append("    input  x : [%d]" % features)
        lines.append("    h = x")
    maybe_ewise()
    for i in range(r.randint(0 if layers else 1, 2)):
        units = r.randint(1, 8)
        if wide and i == 0:
            units = 16
        bias = r.random() < 0.8
        n = name("fc")
        text = "    h = dense(h, %d%s, name = \"%s\")" % (units, "" if bias else ", bias = false", n)
        layers.append({"op": "dense", "name": n, "in": features, "out": units, "bias": bias})
        features = units
        text += maybe_bn(units, 1)
        text += activation()
        lines.append(text)
        maybe_ewise()

    # the head and the loss
    classes = r.randint(2, 5)
    loss = r.choice(["ce_logits", "ce_probs", "ce_soft", "ce_soft_probs", "bce_logits", "bce", "mse"])
    large = loss in ("ce_logits", "ce_soft", "bce_logits") and r.random() < 0.35
    smoothing = r.choice([0, 0, 0.1]) if loss.startswith("ce") else 0
    label = "class(%d)" % classes if loss in ("ce_logits", "ce_probs") else "[%d]" % classes
    lines.insert(1, "    label  y : %s" % label)
    n = name("fc")
    layers.append({"op": "dense", "name": n, "in": features, "out": classes, "bias": True})
    lines.append("    z = dense(h, %d, name = \"%s\")%s" % (classes, n, " * 1000" if large else ""))
    if large:
        layers.append({"op": "scale", "by": 1000})
    ls = ", label_smoothing = %g" % smoothing if smoothing else ""
    if loss in ("ce_logits", "ce_soft"):
        lines.append("    output p = softmax(z)")
        lines.append("    loss   cross_entropy(z, y%s)" % ls)
    elif loss in ("ce_probs", "ce_soft_probs"):
        lines.append("    output p = softmax(z)")
        lines.append("    loss   cross_entropy(p, y, from_logits = false%s)" % ls)
    elif loss == "bce_logits":
        lines.append("    output p = sigmoid(z)")
        lines.append("    loss   bce_with_logits(z, y)")
    elif loss == "bce":
        lines.append("    output p = sigmoid(z)")
        lines.append("    loss   bce(p, y)")
    else:
        lines.append("    output p = tanh(z)")
        lines.append("    loss   mse(p, y)")
    model = "gr_%d" % seed
    text = "# generated by tests/gradcheck_gen.py %d\nmodel %s {\n%s\n}\n" % (seed, model, "\n".join(lines))
    text += "train %s { optimizer sgd(lr = 0.1) batch %d }\n" % (model, batch)
    spec = {"model": model, "batch": batch, "input": None, "classes": classes,
            "loss": loss, "smoothing": smoothing, "layers": layers}
    return model, text, spec


def main():
    seed, out = int(sys.argv[1]), sys.argv[2]
    model, text, spec = gen(seed)
    first = text.split("input  x : ")[1].split("\n")[0]
    spec["input"] = json.loads(first)
    with open("%s/%s.nn" % (out, model), "w") as f:
        f.write(text)
    with open("%s/%s.json" % (out, model), "w") as f:
        json.dump(spec, f)
    print(model)


if __name__ == "__main__":
    main()
