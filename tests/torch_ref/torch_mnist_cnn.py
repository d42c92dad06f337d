#!/usr/bin/python3
"""PyTorch reference for dsl-examples/torch_mnist_cnn.nn: the seed's PyTorch
MNIST CNN (seed 002).

The seed:

    class CNN(nn.Module):
        conv1 = nn.Conv2d(1, 32, 3, 1); conv2 = nn.Conv2d(32, 64, 3, 1)
        fc1 = nn.Linear(9216, 128);     fc2 = nn.Linear(128, 10)
        forward: relu(conv1) -> max_pool2d(2) -> relu(conv2) -> max_pool2d(2)
                 -> flatten -> relu(fc1) -> fc2

As printed, the seed pools twice, which leaves 64 x 5 x 5 = 1600 features,
not the 9216 = 64 x 12 x 12 its fc1 expects: the code cannot run. 9216 is
the feature count of PyTorch's own MNIST example, which pools once, after
conv2; the design's catalogue ("two convs, one pool, fc 9216 -> 128") and
the .nn file follow that, and so does this reference. Loss: F.cross_entropy
on the logits (softmax probabilities are the output); optimizer as the
.nn's train block says.

Usage: /usr/bin/python3 tests/torch_ref/torch_mnist_cnn.py OUTDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agree  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.optim as optim  # noqa: E402


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)   # the one pool: 24 x 24 -> 12 x 12
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def forward(model, x, y):
    logits = model(x)
    return F.softmax(logits, dim=1), F.cross_entropy(logits, y)


agree.run(agree.Reference(
    name="torch_mnist_cnn",
    make_model=CNN,
    names=agree.layer_names([("conv1", "conv1"), ("conv2", "conv2"), ("fc1", "fc1"), ("fc2", "fc2")]),
    input_shape=[1, 28, 28],
    forward=forward,
    make_optimizer=lambda model: optim.Adam(model.parameters(), lr=0.001),  # train torch_mnist_cnn: adam(lr = 0.001)
    free_running=("ill-conditioned on this data: in torch alone, float64, perturbing the initial "
                  "weights by 1e-7 (relative) moves fc1.weight by 1.9e-1 after 20 Adam steps, and "
                  "float32 against float64 differs as much (nnc against float64: 8.6e-2); "
                  "the replay compares these steps"),
))
