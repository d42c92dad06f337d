#!/usr/bin/python3
"""PyTorch reference for dsl-examples/mnist_cnn.nn: the seed's Keras MNIST CNN (seed 000).

The seed, in Keras:

    model.add(layers.Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation='relu'))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation='relu'))
    model.add(layers.Flatten())
    model.add(layers.Dense(64, activation='relu'))
    model.add(layers.Dense(10, activation='softmax'))
    model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
    model.fit(train_images, train_labels, epochs=5, batch_size=64)

written here as the same Sequential in PyTorch, channels first ([1, 28, 28],
as nnc's input), so Flatten orders the 64 x 3 x 3 features channel by
channel where Keras (channels last) would order them pixel by pixel; a
Keras checkpoint would need its first Dense's rows permuted, a torch one
needs nothing. The softmax output is the model's output; categorical
cross-entropy of it against one-hot labels is F.cross_entropy of the
logits (the same function; Keras also clips the probabilities at 1e-7,
which matters only for probabilities below 1e-7). Adam is torch's formula
with the .nn's hyperparameters (Keras' default eps is 1e-7).

The .nn gives the Keras initialisers (glorot_uniform, zero biases); they
do not matter here, since the reference starts from nnc's weights.

Names: the Sequential numbers its layers; nnc calls the convolutions conv1,
conv2, conv3 and the denses fc1 and logits (the let the last one is).
Mapped explicitly:
    conv1.* -> 0.*, conv2.* -> 3.*, conv3.* -> 6.*, fc1.* -> 9.*, logits.* -> 11.*

Usage: /usr/bin/python3 tests/torch_ref/mnist_cnn.py OUTDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agree  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.optim as optim  # noqa: E402


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(),    # 0: Conv2D(32, (3, 3), activation='relu')
        nn.MaxPool2d(2),                   # 2: MaxPooling2D((2, 2))
        nn.Conv2d(32, 64, 3), nn.ReLU(),   # 3: Conv2D(64, (3, 3), activation='relu')
        nn.MaxPool2d(2),                   # 5: MaxPooling2D((2, 2))
        nn.Conv2d(64, 64, 3), nn.ReLU(),   # 6: Conv2D(64, (3, 3), activation='relu')
        nn.Flatten(),                      # 8: Flatten()
        nn.Linear(64 * 3 * 3, 64), nn.ReLU(),  # 9: Dense(64, activation='relu')
        nn.Linear(64, 10),                 # 11: Dense(10, activation='softmax'), before its softmax
    )


def forward(model, x, y):
    logits = model(x)
    return F.softmax(logits, dim=1), F.cross_entropy(logits, y)


agree.run(agree.Reference(
    name="mnist_cnn",
    make_model=make_model,
    names=agree.layer_names([("conv1", "0"), ("conv2", "3"), ("conv3", "6"), ("fc1", "9"), ("logits", "11")]),
    input_shape=[1, 28, 28],
    forward=forward,
    make_optimizer=lambda model: optim.Adam(model.parameters(), lr=0.001),  # train mnist_cnn: adam(lr = 0.001)
))
