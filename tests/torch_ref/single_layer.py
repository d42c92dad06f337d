#!/usr/bin/python3
"""PyTorch reference for dsl-examples/single_layer.nn: the seed's
SimpleNeuralNetwork (seed 001), one sigmoid layer from 2 inputs to 1.

The seed, in NumPy:

    self.weights = np.random.randn(input_size, output_size) * 0.01   # [2, 1]
    self.bias = np.zeros((1, output_size))                           # [1, 1]
    forward:  z = X @ weights + bias; a = sigmoid(z)
    backward: dz = a - y; dw = X.T @ dz / m; db = sum(dz) / m
              weights -= 0.01 * dw; bias -= 0.01 * db

Here as a torch module with the same two parameters, kept as the seed keeps
them, trained by autograd and optim.SGD(lr=0.01). dz = a - y is the gradient
of the mean binary cross-entropy through the sigmoid, so the loss is
nn.BCELoss, as in the .nn file. (The seed prints the mean squared error but
does not train on it.)

Names, mapped explicitly (nnc follows PyTorch's nn.Linear, [out, in]; the
dense is the whole right-hand side of the let z):
    z.weight [1, 2] -> weights [2, 1] (transposed)
    z.bias   [1]    -> bias    [1, 1]

Usage: /usr/bin/python3 tests/torch_ref/single_layer.py OUTDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agree  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.optim as optim  # noqa: E402


class SimpleNeuralNetwork(nn.Module):
    def __init__(self, input_size, output_size):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(input_size, output_size) * 0.01)
        self.bias = nn.Parameter(torch.zeros(1, output_size))

    def forward(self, X):
        z = X @ self.weights + self.bias
        return torch.sigmoid(z)


criterion = nn.BCELoss()


def forward(model, x, y):
    p = model(x)
    return p, criterion(p, y)


agree.run(agree.Reference(
    name="single_layer",
    make_model=lambda: SimpleNeuralNetwork(input_size=2, output_size=1),
    names=[("z.weight", "weights", "T"), ("z.bias", "bias", "reshape")],
    input_shape=[2],
    forward=forward,
    make_optimizer=lambda model: optim.SGD(model.parameters(), lr=0.01),  # train single_layer: sgd(lr = 0.01)
    tol_trained=agree.TOL_ONE_STEP,  # plain SGD does not amplify differences: keep 1e-4
))
