#!/usr/bin/python3
"""PyTorch reference for dsl-examples/xor.nn: the seed's SimpleNet (seed 001).

    class SimpleNet(nn.Module):
        fc1 = nn.Linear(2, 4); fc2 = nn.Linear(4, 1)
        forward: x = F.relu(self.fc1(x)); x = torch.sigmoid(self.fc2(x))
    criterion = nn.BCELoss()
    optimizer = optim.SGD(model.parameters(), lr=0.1)

nnc names the layers fc1 and fc2 from the lets, as the seed does: no
mapping. Usage: /usr/bin/python3 tests/torch_ref/xor.py OUTDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agree  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.optim as optim  # noqa: E402


class SimpleNet(nn.Module):
    def __init__(self):
        super(SimpleNet, self).__init__()
        self.fc1 = nn.Linear(2, 4)
        self.fc2 = nn.Linear(4, 1)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = torch.sigmoid(self.fc2(x))
        return x


criterion = nn.BCELoss()


def forward(model, x, y):
    p = model(x)
    return p, criterion(p, y)


agree.run(agree.Reference(
    name="xor",
    make_model=SimpleNet,
    names=[("fc1.weight", "fc1.weight", "same"), ("fc1.bias", "fc1.bias", "same"),
           ("fc2.weight", "fc2.weight", "same"), ("fc2.bias", "fc2.bias", "same")],
    input_shape=[2],
    forward=forward,
    make_optimizer=lambda model: optim.SGD(model.parameters(), lr=0.1),  # train xor: sgd(lr = 0.1)
    tol_trained=agree.TOL_ONE_STEP,  # plain SGD does not amplify differences: keep 1e-4
))
