#!/usr/bin/python3
"""PyTorch reference for dsl-examples/bn_net.nn: the seed's BNNet (seed 001).

The seed:

    class BNNet(nn.Module):
        fc1 = nn.Linear(2, 4); bn1 = nn.BatchNorm1d(4); fc2 = nn.Linear(4, 1)
        forward: x = self.fc1(x); x = self.bn1(x); x = torch.relu(x); x = self.fc2(x)

It gives no loss or optimizer; the .nn file's are used: the network ends
in a logit, the loss is binary cross-entropy on it (BCEWithLogitsLoss), the
output its sigmoid, Adam with lr 0.01.

Batch norm is compared in both modes: training mode (compute_gradients,
train_step) normalises with the batch's mean and biased variance and
updates running_mean and running_var (unbiased variance, momentum 0.1);
evaluation mode (predict, evaluate) uses the running statistics. The
running statistics are checkpoint tensors (buffers: no gradient; nnc keeps
them in its parameter block, after bn1.bias) and are compared after the
20 steps like the weights. nnc does not save
num_batches_tracked (BatchNorm1d reads it only when momentum=None), so
the reference supplies it as 0 before load_state_dict(strict=True).

bn1 subtracts the batch mean of fc1's output, and with it fc1.bias: that
gradient is 0 in exact arithmetic and rounding noise (about 1e-8) on both
sides, so it is checked to be below 1e-4 of fc1.weight's largest gradient
instead of being compared element by element.

Usage: /usr/bin/python3 tests/torch_ref/bn_net.py OUTDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agree  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.optim as optim  # noqa: E402


class BNNet(nn.Module):
    def __init__(self):
        super(BNNet, self).__init__()
        self.fc1 = nn.Linear(2, 4)
        self.bn1 = nn.BatchNorm1d(4)
        self.fc2 = nn.Linear(4, 1)

    def forward(self, x):
        x = self.fc1(x)
        x = self.bn1(x)
        x = torch.relu(x)
        x = self.fc2(x)
        return x


criterion = nn.BCEWithLogitsLoss()


def forward(model, x, y):
    z = model(x)
    return torch.sigmoid(z), criterion(z, y)


agree.run(agree.Reference(
    name="bn_net",
    make_model=BNNet,
    names=agree.layer_names([("fc1", "fc1"), ("bn1", "bn1"), ("fc2", "fc2")])
    + agree.layer_names([("bn1", "bn1")], params=("running_mean", "running_var")),
    input_shape=[2],
    forward=forward,
    buffers=["bn1.running_mean", "bn1.running_var"],
    # the batch norm subtracts the batch mean of fc1's output, and with it fc1.bias:
    # fc1.bias's gradient is 0 in exact arithmetic, rounding noise (~1e-8) on both sides
    zero_grads={"fc1.bias": "fc1.weight"},
    extra_state={"bn1.num_batches_tracked": torch.tensor(0)},
    make_optimizer=lambda model: optim.Adam(model.parameters(), lr=0.01),  # train bn_net: adam(lr = 0.01)
    free_running=("fc1.bias's gradient is rounding noise (0 in exact arithmetic), which Adam turns into "
                  "steps of up to lr in either direction, so fc1.bias, bn1.running_mean and the "
                  "evaluation outputs follow the noise: after 20 steps torch in float32 and in float64 "
                  "differ by 5.9e-2 (relative) in fc1.bias, nnc and torch float64 by 5.8e-2; "
                  "the replay compares these steps"),
))
