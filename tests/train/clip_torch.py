"""clip_torch.py — tests/train/unit_driver.c's clipping against
torch.nn.utils.clip_grad_value_ and clip_grad_norm_.

usage: clip_torch.py VALUE NORM DRIVER-OUTPUT   (0 turns a clip off)
"""
import sys

import torch

value, norm, path = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
rows = [tuple(map(float, line.split())) for line in open(path)]
w = torch.zeros(len(rows), dtype=torch.float64, requires_grad=True)
w.grad = torch.tensor([r[0] for r in rows], dtype=torch.float64)
if value:
    torch.nn.utils.clip_grad_value_([w], value)
if norm:
    torch.nn.utils.clip_grad_norm_([w], norm)
worst = 0.0
for i, (want, have) in enumerate(zip(w.grad.tolist(), (r[1] for r in rows))):
    err = abs(have - want) / max(abs(want), 1e-300)
    worst = max(worst, err)
    if err > 1e-12:
        print(f"gradient {i}: nnc {have!r}, torch {want!r}")
        sys.exit(1)
after = torch.tensor([r[1] for r in rows]).norm().item()
print(f"ok: {len(rows)} gradients, norm {after:.4g} after clipping, worst "
      f"relative difference {worst:.1e}")
