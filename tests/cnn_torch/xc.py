"""xc.py — repeats in PyTorch what cnn_torch/harness.c did with the nnc model
of xc.nn, from the same initial weights and batch, and compares the loss,
every gradient, the running statistics after the training step and the
evaluation-mode outputs. Usage: xc.py DIR (where the harness ran)."""
import json, os, struct, sys
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_default_dtype(torch.float64)

def read_st(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    head = json.loads(raw[8:8 + n]); data = raw[8 + n:]
    out = {}
    for k, v in head.items():
        if k == '__metadata__': continue
        a, b = v['data_offsets']
        dt = {'F64': np.float64, 'F32': np.float32}[v['dtype']]
        out[k] = torch.tensor(np.frombuffer(data[a:b], dtype=dt).reshape(v['shape']).copy())
    return out, [k for k in head if k != '__metadata__']

class XC(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, stride=2)
        self.bn1 = nn.BatchNorm2d(6)
        self.c2 = nn.Conv2d(6, 5, (2, 3), padding=1)
        self.fc1 = nn.Linear(30, 8)
        self.bn2 = nn.BatchNorm1d(8)
        self.fc2 = nn.Linear(8, 4)
        self.fc3 = nn.Linear(5, 4)
        self.drop = nn.Dropout(0)
    def forward(self, x):
        a = self.c1(F.pad(x, (0, 1, 1, 1)))  # 'same' for stride 2: 11 -> 6, 10 -> 5
        b = F.relu(self.bn1(a))
        c = self.c2(b)
        d = F.max_pool2d(c, 3, 2)
        e = F.avg_pool2d(c, 2)
        f = c.mean(dim=(2, 3))
        h = torch.flatten(d, 1) + torch.flatten(e, 1)
        g = self.drop(torch.tanh(self.bn2(self.fc1(h))))
        return self.fc2(g) + self.fc3(f)

os.chdir(sys.argv[1])
w, order = read_st('before.safetensors')
net = XC()
sd = net.state_dict()
ours = [k for k in sd if not k.endswith('num_batches_tracked')]
assert ours == order, (ours, order)
net.load_state_dict(w, strict=False)
x = torch.tensor(np.fromfile('x.bin', dtype=np.float64).reshape(5, 3, 11, 10))
y = torch.tensor([i % 4 for i in range(5)])
net.train()
loss = F.cross_entropy(net(x), y)
loss.backward()
net.eval()
with torch.no_grad():
    probs = F.softmax(net(x), dim=1)
vals = [float(v) for v in open('nnc.txt')]
P = sum(w[k].numel() for k in order)
got_loss, got_grads, got_params, got_out = vals[0], vals[1:1+P], vals[1+P:1+2*P], vals[1+2*P:]
worst = abs(got_loss - loss.item())
at = 0
params = dict(net.named_parameters()); bufs = dict(net.named_buffers())
for k in order:
    n = w[k].numel()
    g = params[k].grad.flatten() if k in params else torch.zeros(n)
    worst = max(worst, (torch.tensor(got_grads[at:at+n]) - g).abs().max().item())
    now = (params[k] if k in params else bufs[k]).detach().flatten()
    if k in bufs:  # running statistics after one training-mode forward
        worst = max(worst, (torch.tensor(got_params[at:at+n]) - now).abs().max().item())
    at += n
worst = max(worst, (torch.tensor(got_out) - probs.flatten()).abs().max().item())
print(f"pytorch cross-check: loss {loss.item():.6f}, {len(order)} tensors, worst abs difference {worst:.3g}")
sys.exit(0 if worst < 1e-10 else 1)
