#!/usr/bin/python3
"""PyTorch reference for dsl-examples/mnist_cnn_bn.nn: the seed's Keras MNIST
CNN (seed 000) with batch normalisation after every convolution and the
hidden dense layer (no bias before a norm), and Dropout(0.25) before the
classifier. Not a seed model as such, so the torch module simply uses
nnc's layer names (conv1, bn1, ..., fc1, bn4, logits): no mapping.

    conv1 = Conv2d(1, 32, 3, bias=False); bn1 = BatchNorm2d(32); relu; max_pool2d(2)
    conv2 = Conv2d(32, 64, 3, bias=False); bn2 = BatchNorm2d(64); relu; max_pool2d(2)
    conv3 = Conv2d(64, 64, 3, bias=False); bn3 = BatchNorm2d(64); relu
    flatten; fc1 = Linear(576, 64, bias=False); bn4 = BatchNorm1d(64); relu
    dropout(0.25); logits = Linear(64, 10)
    output softmax(logits); loss F.cross_entropy(logits, label); Adam(lr=0.001)

The model as it is (variant none): nnc draws dropout masks from its own
generator, which torch cannot reproduce, and with 64 units per sample the
mask cannot be recovered from the outputs as for dropout_net (2^64
candidates). So only evaluation mode is compared: predict and evaluate on
the initial weights (batch norm on its initial running statistics), and
predict with nnc's weights and running statistics after its 20 training
steps; training mode is skipped.

Variant "nodropout": tests/torch_agree.sh compiles the same file with its
dropout line deleted, and this reference leaves the dropout out too; then
everything is compared in training mode as well: batch statistics over
(batch, height, width) for the 2-d norms and over the batch for the 1-d
one, their gradients, and the running statistics after 20 steps.

nnc does not save num_batches_tracked; the reference supplies 0.

Usage: /usr/bin/python3 tests/torch_ref/mnist_cnn_bn.py OUTDIR [LABEL [nodropout]]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agree  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.optim as optim  # noqa: E402


class CnnBn(nn.Module):
    def __init__(self, dropout):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 64, 3, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 3 * 3, 64, bias=False)
        self.bn4 = nn.BatchNorm1d(64)
        self.dropout = nn.Dropout(0.25) if dropout else nn.Identity()
        self.logits = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)   # 28 -> 26 -> 13
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)   # 13 -> 11 -> 5
        x = F.relu(self.bn3(self.conv3(x)))                    # 5 -> 3
        x = F.relu(self.bn4(self.fc1(torch.flatten(x, 1))))
        x = self.dropout(x)
        return self.logits(x)


def forward(model, x, y):
    logits = model(x)
    return F.softmax(logits, dim=1), F.cross_entropy(logits, y)


BNS = ("bn1", "bn2", "bn3", "bn4")


def reference(variant):
    if variant not in (None, "nodropout"):
        raise ValueError(f"unknown variant {variant!r}")
    names = [("conv1.weight", "conv1.weight", "same"), ("conv2.weight", "conv2.weight", "same"),
             ("conv3.weight", "conv3.weight", "same"), ("fc1.weight", "fc1.weight", "same")]
    names += agree.layer_names([(b, b) for b in BNS], params=("weight", "bias", "running_mean", "running_var"))
    names += agree.layer_names([("logits", "logits")])
    return agree.Reference(
        name="mnist_cnn_bn" if variant is None else f"mnist_cnn_bn ({variant})",
        make_model=lambda: CnnBn(dropout=variant is None),
        names=names,
        input_shape=[1, 28, 28],
        forward=forward,
        buffers=[f"{b}.{s}" for b in BNS for s in ("running_mean", "running_var")],
        extra_state={f"{b}.num_batches_tracked": torch.tensor(0) for b in BNS},
        make_optimizer=lambda model: optim.Adam(model.parameters(), lr=0.001),  # train mnist_cnn_bn: adam(lr = 0.001)
        skip_training=None if variant else (
            "nnc's dropout masks come from its own generator and cannot be recovered for 64 units; "
            "the nodropout variant compares training mode"),
    )


agree.run(reference)
