#!/usr/bin/python3
"""PyTorch reference for dsl-examples/mnist_mlp.nn: the seed's multilayer
perceptron (seed 002).

The seed:

    mlp = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 64), nn.ReLU(),
        nn.Linear(64, 10))

on [1, 28, 28] images (flattened first, as nnc's `image |> flatten`), with
F.cross_entropy on the logits and softmax probabilities as the output, and
optim.Adam(lr=0.001) as the .nn's train block says.

Names: the Sequential calls its layers 0, 2 and 4; nnc calls them fc1, fc2
(not the last step of the pipe) and logits (the let the last dense ends).
Mapped explicitly:
    fc1.* -> 0.*, fc2.* -> 2.*, logits.* -> 4.*

Usage: /usr/bin/python3 tests/torch_ref/mnist_mlp.py OUTDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agree  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.optim as optim  # noqa: E402


def make_model():
    return nn.Sequential(
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def forward(model, x, y):
    logits = model(torch.flatten(x, 1))
    return F.softmax(logits, dim=1), F.cross_entropy(logits, y)


agree.run(agree.Reference(
    name="mnist_mlp",
    make_model=make_model,
    names=agree.layer_names([("fc1", "0"), ("fc2", "2"), ("logits", "4")]),
    input_shape=[1, 28, 28],
    forward=forward,
    make_optimizer=lambda model: optim.Adam(model.parameters(), lr=0.001),  # train mnist_mlp: adam(lr = 0.001)
))
