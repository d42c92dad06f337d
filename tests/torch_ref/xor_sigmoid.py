#!/usr/bin/python3
"""PyTorch reference for dsl-examples/xor_sigmoid.nn: the seed's hand-written
[2, 4, 1] NeuralNetwork with manual backprop (seed 001).

The seed, in NumPy:

    for i in range(len(layers) - 1):
        w = np.random.randn(layers[i], layers[i+1]) * 0.01   # [in, out]
        b = np.zeros((1, layers[i+1]))
    forward:  z = a @ w + b; a = sigmoid(z), on every layer
    backward: delta = a_out - y; dw = a.T @ delta / m; db = sum(delta) / m
              w -= 0.1 * dw; b -= 0.1 * db; delta = delta @ w.T * sigmoid'(z)

Here as a torch module with the same parameters, kept as the seed keeps
them ([in, out] weights, [1, out] biases), trained by autograd and
optim.SGD(lr=0.1). delta = a_out - y is the gradient of the mean binary
cross-entropy through the sigmoid (m samples, one output each), so the loss
is nn.BCELoss, as in the .nn file.

One deliberate difference from the seed: its backward updates w before it
propagates delta through w.T, so the earlier layer's gradient uses the
already-updated weights. That is a bug of the tutorial, not a choice of the
model; nnc (and this reference) use the true gradient.

Names, mapped explicitly (nnc follows PyTorch's nn.Linear, [out, in]):
    fc1.weight [4, 2] -> weights.0 [2, 4] (transposed)
    fc1.bias   [4]    -> biases.0  [1, 4]
    o.weight   [1, 4] -> weights.1 [4, 1] (transposed)
    o.bias     [1]    -> biases.1  [1, 1]
(nnc's first dense is fc1, not the last step of its pipe; the second is the
whole right-hand side of the let o.)

Usage: /usr/bin/python3 tests/torch_ref/xor_sigmoid.py OUTDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agree  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.optim as optim  # noqa: E402


class NeuralNetwork(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = layers  # e.g. [2, 4, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i in range(len(layers) - 1):
            self.weights.append(nn.Parameter(torch.randn(layers[i], layers[i + 1]) * 0.01))
            self.biases.append(nn.Parameter(torch.zeros(1, layers[i + 1])))

    def forward(self, X):
        a = X
        for w, b in zip(self.weights, self.biases):
            a = torch.sigmoid(a @ w + b)
        return a


criterion = nn.BCELoss()


def forward(model, x, y):
    p = model(x)
    return p, criterion(p, y)


agree.run(agree.Reference(
    name="xor_sigmoid",
    make_model=lambda: NeuralNetwork([2, 4, 1]),
    names=[("fc1.weight", "weights.0", "T"), ("fc1.bias", "biases.0", "reshape"),
           ("o.weight", "weights.1", "T"), ("o.bias", "biases.1", "reshape")],
    input_shape=[2],
    forward=forward,
    make_optimizer=lambda model: optim.SGD(model.parameters(), lr=0.1),  # train xor_sigmoid: sgd(lr = 0.1)
    tol_trained=agree.TOL_ONE_STEP,  # plain SGD does not amplify differences: keep 1e-4
))
