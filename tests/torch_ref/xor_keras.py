#!/usr/bin/python3
"""PyTorch reference for dsl-examples/xor_keras.nn: the seed's Keras XOR model (seed 001).

The seed, in Keras:

    model = Sequential([Dense(4, activation='relu', input_shape=(2,)),
                        Dense(1, activation='sigmoid')])
    model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])

written here as the same Sequential in PyTorch. Differences from Keras that
the .nn file also makes, and that this reference therefore follows:
  - Adam is torch.optim.Adam's formula (eps added to sqrt(v_hat)); Keras adds
    its epsilon to sqrt(v) before the bias correction. With eps = 1e-7 the
    two differ only for gradients near 1e-7.
  - binary cross-entropy is nn.BCELoss (logs clamped at -100); Keras clips
    the probabilities to [1e-7, 1 - 1e-7] instead. Same values for
    probabilities inside that range, as they are here.

Names: torch's Sequential calls the layers 0 and 2. nnc calls the first
dense fc1 (it is not the last step of its pipe) and the second z (the let
it is the last step of). Mapped explicitly:
    fc1.weight -> 0.weight, fc1.bias -> 0.bias, z.weight -> 2.weight, z.bias -> 2.bias

Usage: /usr/bin/python3 tests/torch_ref/xor_keras.py OUTDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agree  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.optim as optim  # noqa: E402


def make_model():
    return nn.Sequential(
        nn.Linear(2, 4), nn.ReLU(),     # Dense(4, activation='relu', input_shape=(2,))
        nn.Linear(4, 1), nn.Sigmoid(),  # Dense(1, activation='sigmoid')
    )


criterion = nn.BCELoss()  # loss='binary_crossentropy'


def forward(model, x, y):
    p = model(x)
    return p, criterion(p, y)


agree.run(agree.Reference(
    name="xor_keras",
    make_model=make_model,
    names=[("fc1.weight", "0.weight", "same"), ("fc1.bias", "0.bias", "same"),
           ("z.weight", "2.weight", "same"), ("z.bias", "2.bias", "same")],
    input_shape=[2],
    forward=forward,
    # train xor_keras: adam(lr = 0.001, betas = [0.9, 0.999], eps = 1e-7), Keras' defaults
    make_optimizer=lambda model: optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-7),
))
