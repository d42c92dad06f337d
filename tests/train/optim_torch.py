"""optim_torch.py — replays tests/train/optim_driver.c in torch.optim.

usage: optim_torch.py MANIFEST

Each line of MANIFEST is "LABEL|OPTIMIZER-SPEC|DRIVER-OUTPUT" (one torch
import for every case). OPTIMIZER-SPEC is a Python expression over `params` (the model's
parameters, a dict name -> tensor, in declaration order) and `named(...)`
that builds the torch optimizer, e.g. "torch.optim.SGD(list(params.values()),
lr=0.1)". The parameters are the model of tests/train/opt.nn, laid out as
nnc lays them out (declaration order, row-major). Compares every value
after every step with a relative tolerance of 1e-6 (f64); prints one
line per case, "ok: ..." or "FAIL ...", then "N passed, N failed".

A spec prefixed "f32:" is a float32 build (SGD, Adam, AdamW): torch runs in
float32 too and every value must be the same float (tolerance 0), since
nnc's update is PyTorch's, operation for operation, fused multiply-adds
where ATen's vector kernels use them. Those are ATen's AVX2 and AVX-512
kernels; with another (torch.__config__.show() names it) the f32 cases
are compared at 1e-6 like the rest, and the line says so.
"""
import math
import sys

import torch

from manifest import run

CAPABILITY = next((line.split(":")[1].strip() for line in torch.__config__.show().splitlines()
                   if "CPU capability usage" in line), "unknown")
FMA_KERNELS = CAPABILITY in ("AVX2", "AVX512")

SHAPES = [("fc1.weight", (4, 3)), ("fc1.bias", (4,)),
          ("fc2.weight", (2, 4)), ("fc2.bias", (2,))]
STEPS = 6


def check(spec, path):
    f32 = spec.startswith("f32:")
    if f32:
        spec = spec[len("f32:"):]
    torch.set_default_dtype(torch.float32 if f32 else torch.float64)
    tol = 0.0 if f32 and FMA_KERNELS else 1e-6
    total = sum(math.prod(s) for _, s in SHAPES)
    flat = [math.cos(0.7 * i) / 2 for i in range(total)]
    params, at = {}, 0
    for name, shape in SHAPES:
        n = math.prod(shape)
        params[name] = torch.tensor(flat[at:at + n]).reshape(shape).requires_grad_()
        at += n

    def named(*names):
        return [params[n] for n in names]

    opt = eval(spec, {"torch": torch, "params": params, "named": named})
    got = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts[0] == "steps":
                steps = int(parts[1])
                continue
            got[(int(parts[0]), int(parts[1]))] = float(parts[2])
    if steps != STEPS:
        return f"driver took {steps} steps, expected {STEPS}"
    worst = 0.0
    for s in range(1, STEPS + 1):
        if s == 4:
            for g in opt.param_groups:
                g["lr"] = g["lr"] / 2
        at = 0
        for name, shape in SHAPES:
            n = math.prod(shape)
            grad = [math.sin(0.37 * (at + i) + 1.3 * s) * (1 + 0.1 * s) for i in range(n)]
            params[name].grad = torch.tensor(grad).reshape(shape)
            at += n
        opt.step()
        at = 0
        for name, shape in SHAPES:
            for i, want in enumerate(params[name].detach().reshape(-1).tolist()):
                have = got[(s, at + i)]
                err = abs(have - want) / max(abs(want), 1e-12)
                worst = max(worst, err)
                if err > tol:
                    return f"step {s}: {name}[{i}] nnc {have!r} torch {want!r} (rel {err:.2e})"
            at += params[name].numel()
    if tol == 0:
        print(f"ok: {STEPS} steps agree bit for bit (float32, PyTorch's {CAPABILITY} kernels)", end="")
    else:
        print(f"ok: {STEPS} steps agree, worst relative difference {worst:.2e}"
              + (f" (float32, PyTorch's {CAPABILITY} kernels: not compared bit for bit)" if f32 else ""),
              end="")
    return None


sys.exit(run(check))
