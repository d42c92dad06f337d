#!/usr/bin/python3
"""bench_torch.py -- PyTorch reference timings for tests/bench.sh.

Defines, in plain PyTorch, the same networks and optimisers as nnc's
examples (dsl-examples/{xor,mnist_mlp,mnist_cnn,cifar_cnn}.nn), trains them
on synthetic data of the same shapes and prints the time of one full
training step (zero_grad, forward, loss, backward, optimiser step):

    bench_torch.py MODEL [--threads N] [--steps N | --target-ms MS]
    -> torch: model=mnist_cnn steps=40 threads=2 ms_per_step=12.3456

It must run with Debian's python3-torch: call it as /usr/bin/python3 (the
python3 on PATH may be another interpreter without torch). One model per
process, so bench.sh can alternate it with nnc's trainer run by run.
"""
import argparse
import sys
import time

import torch
from torch import nn

# name -> (batch, input shape per sample, label kind)
SHAPES = {
    "xor": (4, (2,), "binary"),
    "mnist_mlp": (64, (1, 28, 28), "class10"),
    "mnist_cnn": (64, (1, 28, 28), "class10"),
    "cifar_cnn": (4, (3, 32, 32), "class10"),
}


def build(name):
    """The model, its loss and its optimiser, as the .nn example has them."""
    if name == "xor":  # seed 001 SimpleNet: 2-4-1, relu, sigmoid, BCE, SGD 0.1
        net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1), nn.Sigmoid())
        return net, nn.BCELoss(), torch.optim.SGD(net.parameters(), lr=0.1)
    if name == "mnist_mlp":  # seed 002: 784-256-64-10, CE from logits, Adam
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                            nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))
        return net, nn.CrossEntropyLoss(), torch.optim.Adam(net.parameters(), lr=1e-3)
    if name == "mnist_cnn":  # seed 000: the Keras MNIST CNN, Adam 1e-3
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
            nn.Linear(64 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, 10))
        return net, nn.CrossEntropyLoss(), torch.optim.Adam(net.parameters(), lr=1e-3)
    if name == "cifar_cnn":  # seed 001 SimpleCNN, SGD 0.001 momentum 0.9
        net = nn.Sequential(
            nn.Conv2d(3, 6, 3), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 3), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(16 * 6 * 6, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10))
        return (net, nn.CrossEntropyLoss(),
                torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9))
    raise SystemExit(f"bench_torch.py: unknown model {name!r} "
                     f"(known: {', '.join(SHAPES)})")


def data(name):
    """Synthetic inputs and labels of the model's shapes (like nnc --bench)."""
    batch, shape, kind = SHAPES[name]
    g = torch.Generator().manual_seed(42)
    x = torch.rand((batch,) + shape, generator=g)
    if kind == "binary":
        y = (torch.rand((batch, 1), generator=g) < 0.5).float()
    else:
        y = torch.randint(0, 10, (batch,), generator=g)
    return x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=sorted(SHAPES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0,
                    help="timed steps (default: as many as fill --target-ms)")
    ap.add_argument("--target-ms", type=float, default=1000.0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    # nnc's trainer flushes subnormal numbers to zero (--keep-subnormals
    # turns that off): the same for PyTorch, so neither pays for them
    torch.set_flush_denormal(True)
    torch.manual_seed(1)
    net, loss_fn, opt = build(a.model)
    x, y = data(a.model)

    def step():
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss

    # Warm-up: allocator caches, thread pool, oneDNN primitive creation.
    # Timing the last warm-up steps also sizes the timed run.
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(3):
        step()
    per_step = (time.perf_counter() - t0) / 3
    steps = a.steps or max(5, int(a.target_ms / 1000.0 / max(per_step, 1e-9)))

    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    elapsed = time.perf_counter() - t0
    if not torch.isfinite(loss):
        print(f"bench_torch.py: {a.model}: loss is not finite", file=sys.stderr)
        return 1
    print(f"torch: model={a.model} steps={steps} threads={torch.get_num_threads()} "
          f"ms_per_step={elapsed * 1000.0 / steps:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
