#!/usr/bin/python3
"""PyTorch reference for dsl-examples/dropout_net.nn: the seed's DropoutNet (seed 001).

The seed:

    class DropoutNet(nn.Module):
        fc1 = nn.Linear(2, 4); dropout = nn.Dropout(p=0.5); fc2 = nn.Linear(4, 1)
        forward: x = F.relu(self.fc1(x)); x = self.dropout(x); x = torch.sigmoid(self.fc2(x))
    model.train()  # dropout on;  model.eval()  # dropout off

It gives no loss or optimizer; the .nn file's are used: binary
cross-entropy of the sigmoid output, Adam with lr 0.01.

Evaluation mode (predict, evaluate) is deterministic and compared as for
any model. Training mode draws a random mask, and nnc's generator is not
torch's, so torch cannot draw the same one. Rather than skip training, this
reference recovers nnc's mask: per sample, it tries all 2^4 masks of the 4
hidden units (inverted dropout, kept units scaled by 1 / (1 - p)) and takes
the one whose output matches nnc's training output for that sample; then
it runs torch's forward and backward with that mask. The recovered mask is
accepted only when it reproduces nnc's output to 1e-5 and every other mask
that changes the output is at least 10 times further off; otherwise the
comparison fails with the sample named. A mask bit of a unit that relu
already zeroed changes nothing, and either value is fine.

Usage: /usr/bin/python3 tests/torch_ref/dropout_net.py OUTDIR
"""
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agree  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch.optim as optim  # noqa: E402

P = 0.5  # nn.Dropout(p=0.5)


class DropoutNet(nn.Module):
    def __init__(self):
        super(DropoutNet, self).__init__()
        self.fc1 = nn.Linear(2, 4)
        self.dropout = nn.Dropout(p=P)
        self.fc2 = nn.Linear(4, 1)

    def forward(self, x, mask=None):
        x = F.relu(self.fc1(x))
        if mask is None:
            x = self.dropout(x)  # identity in eval mode
        else:
            x = x * mask / (1 - P)  # nn.Dropout in train mode, with a given mask
        x = torch.sigmoid(self.fc2(x))
        return x


criterion = nn.BCELoss()
MASKS = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))  # [16, 4]


def forward(model, x, y):
    p = model(x)
    return p, criterion(p, y)


def recover_mask(model, x, nnc_out):
    """The dropout mask [B, 4] under which torch gives nnc's training output."""
    with torch.no_grad():
        h = F.relu(model.fc1(x))                                   # [B, 4]
        kept = h[:, None, :] * MASKS[None, :, :] / (1 - P)         # [B, 16, 4]
        outs = torch.sigmoid(model.fc2(kept))[..., 0].double()     # [B, 16]
    want = torch.from_numpy(nnc_out.reshape(-1)).double()
    err = (outs - want[:, None]).abs()
    masks = []
    for b in range(x.shape[0]):
        best = int(torch.argmin(err[b]))
        if err[b, best] > 1e-5:
            raise ValueError(f"no dropout mask reproduces nnc's training output {want[b].item():.9g} "
                             f"of sample {b} (closest {outs[b, best].item():.9g})")
        # masks that change the output (not just bits of units relu zeroed) must be far off
        differ = (kept[b] - kept[b, best]).abs().amax(dim=1) > 0
        others = err[b][differ & (err[b] < 10 * err[b, best] + 1e-7)]
        if len(others):
            raise ValueError(f"sample {b}: several dropout masks give nnc's training output")
        masks.append(MASKS[best])
    return torch.stack(masks)


def train_forward(model, x, y, nnc_out):
    p = model(x, mask=recover_mask(model, x, nnc_out))
    return p, criterion(p, y)


agree.run(agree.Reference(
    name="dropout_net",
    make_model=DropoutNet,
    names=agree.layer_names([("fc1", "fc1"), ("fc2", "fc2")]),
    input_shape=[2],
    forward=forward,
    train_forward=train_forward,
    make_optimizer=lambda model: optim.Adam(model.parameters(), lr=0.01),  # train dropout_net: adam(lr = 0.01)
))
