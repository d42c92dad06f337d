#!/usr/bin/python3
"""PyTorch reference for dsl-examples/cifar_cnn.nn: the seed's CIFAR-10
SimpleCNN (seed 001).

The seed:

    class SimpleCNN(nn.Module):
        conv1 = nn.Conv2d(3, 6, 3); pool = nn.MaxPool2d(2, 2); conv2 = nn.Conv2d(6, 16, 3)
        fc1 = nn.Linear(16 * 6 * 6, 120); fc2 = nn.Linear(120, 84); fc3 = nn.Linear(84, 10)
        forward: pool(relu(conv1)) -> pool(relu(conv2)) -> view(-1, 576)
                 -> relu(fc1) -> relu(fc2) -> fc3
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)   # batch_size=4

32 x 32 -> conv 30 -> pool 15 -> conv 13 -> pool 6 (the pool floors), so
16 x 6 x 6 = 576 features, as the seed says. The seed's Normalize((0.5,)*3,
(0.5,)*3) is part of its data pipeline, not of the model: the generated
model takes the already-normalised input, and so does this reference.
The output is softmax(fc3), the loss nn.CrossEntropyLoss of the logits.

Usage: /usr/bin/python3 tests/torch_ref/cifar_cnn.py OUTDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agree  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.optim as optim  # noqa: E402


class SimpleCNN(nn.Module):
    def __init__(self):
        super(SimpleCNN, self).__init__()
        self.conv1 = nn.Conv2d(3, 6, 3)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))  # [batch, 6, 15, 15]
        x = self.pool(F.relu(self.conv2(x)))  # [batch, 16, 6, 6]
        x = x.view(-1, 16 * 6 * 6)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


criterion = nn.CrossEntropyLoss()


def forward(model, x, y):
    logits = model(x)
    return F.softmax(logits, dim=1), criterion(logits, y)


agree.run(agree.Reference(
    name="cifar_cnn",
    make_model=SimpleCNN,
    names=agree.layer_names([("conv1", "conv1"), ("conv2", "conv2"), ("fc1", "fc1"), ("fc2", "fc2"),
                             ("fc3", "fc3")]),
    input_shape=[3, 32, 32],
    forward=forward,
    # train cifar_cnn: sgd(lr = 0.001, momentum = 0.9)
    make_optimizer=lambda model: optim.SGD(model.parameters(), lr=0.001, momentum=0.9),
    # SGD with momentum 0.9 sums the last steps' gradients (about 6.5 of them by step 20)
    # but divides by nothing: differences grow linearly, not as under Adam.
    tol_trained=agree.TOL_ONE_STEP,
))
