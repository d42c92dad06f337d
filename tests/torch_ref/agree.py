"""Shared machinery of the PyTorch agreement test (tests/torch_agree.sh).

Each tests/torch_ref/MODEL.py is a hand-written PyTorch model that follows
the seed's own code; it describes itself with a Reference and calls run().
run() reads what tests/torch_agree.c wrote for the nnc-generated model,
loads nnc's initial weights into the torch model (load_state_dict with
strict=True, through the reference's explicit name map), replays the same
batches and compares, in float32 on both sides:

 1. one step (batch 0, from the initial weights)
      predict (evaluation mode), evaluate's loss (evaluation mode),
      compute_gradients' loss and outputs (training mode), every gradient;
      and predict (evaluation mode) with nnc's own weights after its 20
      training steps, which tests evaluation mode with trained batch-norm
      statistics whatever happened in training
 2. 20 steps, teacher-forced ("replay"): torch starts from nnc's initial
      weights and at every step computes its own loss, outputs and
      gradients at its current weights, compares them with nnc's for that
      step, then hands nnc's gradients of that step to its own optimizer.
      After 20 steps: every checkpoint tensor (weights and batch-norm
      running statistics) and predict on batch 0.
 3. 20 steps, free-running: torch trains on its own gradients, as a user
      would; then the losses and outputs along the way, every checkpoint
      tensor, and predict on batch 0. When the replay found that nnc took
      a decision at step k that torch takes the other way at the same
      weights (its "note"), the runs part at step k: only the losses and
      outputs of steps 1..k are compared, and the line says so. (mnist_cnn
      at the time of writing: a max-pool window at step 8 whose two
      largest inputs are 4e-8 apart; reversing that one decision in a
      float64 torch run moves fc1.bias by 6.6% after 20 steps, as much as
      nnc differs, where float32 against float64 torch, or a 1e-7 change
      of the initial weights, moves it by less than 1e-5.)

Why both 2 and 3. Two float32 implementations of the same network drift
apart when a rounding-level difference changes a discrete decision: an
activation within 1e-8 of zero is kept by one side's relu and dropped by
the other's, routing one more term into a gradient (seen on mnist_cnn_bn:
one element of bn1's output is +2.2e-9 in float32 and -1.3e-8 in float64
at step 4, and bn1.bias's gradient changes by 1.7%); or a gradient that
is zero in exact arithmetic (a bias feeding a batch norm) is rounding noise
of either sign, which Adam scales up to a full step of lr. After such an
event the two trajectories are different trajectories, and comparing them
after 20 steps compares noise (torch in float32 against torch in float64
disagrees as much). The replay (2) never lets the trajectories separate,
so it checks the optimizer, the step count, the bias corrections and the
running statistics with tight tolerances on every model; the free-running
run (3) is the end-to-end check where it is well-conditioned, and a
reference skips it, saying why, where it is not.

Even from the same weights a step's gradients can differ by such a
decision. When the gradients of a step (1 or 2) disagree, explain() looks
for it: it reruns the step in float64 noting every relu input within 1e-6
of 0 and every max-pool window whose two largest inputs are within 1e-6
of each other (relative to the largest input of that call), then reverses
the nearest ones, singly and in pairs, until torch's gradients match
nnc's at TOL_ONE_STEP. If some do, the line "note ...: matches torch in
float64 with these decisions reversed: ..." names them and the comparison
uses those gradients; if none do, the difference is reported as it is.
A relu input kept although it is below 0 in float64 outputs |x| rather
than x, so that a max-pool after the relu takes it over the zeros of its
window, as nnc did when it saw the input above 0 (torch_mnist_cnn: relu
input -1.45e-9 at replay step 13, the largest of a window of negatives).

Error measure, the same for every comparison: for nnc's tensor a and
torch's b, max_abs = max_i |a_i - b_i| and rel = max_abs / max_i |b_i|,
the worst difference relative to the tensor's own scale (an elementwise
relative error means nothing for a gradient element that is 0 in one and
1e-12 in the other). A comparison passes when rel <= its tolerance.

Tolerances:
  TOL_ONE_STEP = 1e-4: outputs, losses and gradients of one step from the
      same weights (part 1, and each step of part 2). The two sides sum the
      same products in different orders (nnc sums losses in double), which
      moves float32 results by a few ulps times the square root of the
      number of terms: about 1e-6 relative on these models.
  TOL_REPLAY = 1e-5: the weights after 20 replayed steps. Both optimizers
      see the same gradients, so only the update arithmetic differs: none
      for SGD and Adam, which nnc computes as torch does (the same bits,
      see lower_sgd and lower_adam), a few ulps per step for RMSprop,
      which nnc computes in double and rounds once.
  TOL_TRAINED = 1e-3 (default) for the free-running run (part 3). The
      one-step differences feed into the next step's weights and compound;
      for Adam they are also divided by sqrt(v) + eps, so a component with
      a small gradient moves by a rounding-level difference of g turned
      into a difference of up to lr in that step's update (mnist_mlp: 1.6e-4
      after 20 steps). 20 steps of lr 1e-3 move the weights by about 1e-2
      of their scale, so 1e-3 still catches a wrong formula (a missed bias
      correction, a wrong beta, a wrong momentum buffer) by an order of
      magnitude. A reference may tighten it (plain SGD: 1e-4).
"""
import copy
import itertools
import json
import os
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # the shell script checks first; this is a fallback
    print(f"skip: cannot import numpy/torch: {e}")
    print("0 passed, 0 failed")
    sys.exit(0)

TOL_ONE_STEP = 1e-4
TOL_REPLAY = 1e-5
TOL_TRAINED = 1e-3

NUMPY_DTYPE = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4"}


def read_safetensors(path):
    """Returns [(name, numpy array)] in the order of the data section."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = raw[8 + n :]
    out = []
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=NUMPY_DTYPE[info["dtype"]])
        out.append((name, arr.reshape(info["shape"]).astype(arr.dtype.newbyteorder("="))))
    return out


def read_meta(d):
    meta = {}
    with open(os.path.join(d, "meta.txt")) as f:
        for line in f:
            k, v = line.strip().split("=", 1)
            meta[k] = int(v)
    return meta


def read_f32(d, name, shape=None):
    a = np.fromfile(os.path.join(d, name), dtype="<f4").astype(np.float32)
    return a.reshape(shape) if shape is not None else a


def t32(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


class Reference:
    """What a reference tells run() about its model.

    name        the model's name (as in dsl-examples/NAME.nn)
    make_model  () -> nn.Module, the torch model in the seed's own terms
    names       [(nnc_name, torch_name, how)]: every checkpoint tensor of
                nnc and the state_dict entry it is, with how = "same",
                "T" (nnc stores the transpose: the seed keeps [in, out]) or
                "reshape" (same elements, the torch shape differs)
    input_shape the per-sample input shape ([C, H, W] or [n])
    forward     (model, x, y) -> (output, loss): output is what nnc's
                `output` holds (probabilities, not logits), loss the
                scalar the .nn's `loss` computes; called in train() or
                eval() mode as the comparison needs
    make_optimizer  (model) -> torch.optim.Optimizer with the hyperparameters
                of the .nn's train block
    train_forward   optional (model, x, y, nnc_output) -> (output, loss) for
                training mode, when it needs to see nnc's training output
                (dropout: the mask is recovered from it); default forward
    buffers     nnc checkpoint names that are not parameters (no gradient),
                e.g. batch-norm running statistics
    zero_grads  {nnc_name: other_nnc_name}: parameters whose gradient is 0
                in exact arithmetic (a bias feeding a batch norm), so both
                sides hold rounding noise; each is checked to be below
                TOL_ONE_STEP times the largest gradient of other_nnc_name
    extra_state torch state_dict entries that nnc does not save, with their
                values at the start (e.g. num_batches_tracked)
    tol_trained tolerance of the free-running comparisons
    free_running  None, or why the free-running comparison is skipped
    notes       lines printed before the results
    skip_training  None, or why the training-mode comparisons are skipped
    """

    def __init__(self, name, make_model, names, input_shape, forward, make_optimizer,
                 train_forward=None, buffers=(), zero_grads=None, extra_state=None,
                 tol_trained=TOL_TRAINED, free_running=None, notes=(), skip_training=None):
        self.name = name
        self.make_model = make_model
        self.names = names
        self.input_shape = list(input_shape)
        self.forward = forward
        self.make_optimizer = make_optimizer
        self.train_forward = train_forward
        self.buffers = set(buffers)
        self.zero_grads = dict(zero_grads or {})
        self.extra_state = extra_state or {}
        self.tol_trained = tol_trained
        self.free_running = free_running
        self.notes = list(notes)
        self.skip_training = skip_training


def layer_names(pairs, params=("weight", "bias")):
    """[(nnc_layer, torch_layer)] -> names entries for layers whose tensors
    keep their shapes: NNC.weight -> TORCH.weight, NNC.bias -> TORCH.bias."""
    return [(f"{n}.{p}", f"{t}.{p}", "same") for n, t in pairs for p in params]


class Checker:
    def __init__(self, model_name):
        self.model_name = model_name
        self.passed = 0
        self.failed = 0

    def fail(self, what, why):
        self.failed += 1
        print(f"FAIL {self.model_name}: {what}: {why}")

    def ok(self, what, why=""):
        self.passed += 1
        print(f"ok   {self.model_name}: {what}{': ' + why if why else ''}")

    def compare(self, what, nnc, ref, tol):
        a = np.asarray(nnc, dtype=np.float64)
        b = np.asarray(ref, dtype=np.float64)
        if a.shape != b.shape:
            self.fail(what, f"shape {list(a.shape)} from nnc, {list(b.shape)} from torch")
            return False
        if a.size == 0:
            self.ok(what, "empty")
            return True
        if not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
            bad = tuple(np.argwhere(~np.isfinite(a) | ~np.isfinite(b))[0])
            self.fail(what, f"non-finite value at {list(bad)}: nnc {a[bad]!r}, torch {b[bad]!r}")
            return False
        diff = np.abs(a - b)
        scale = float(np.max(np.abs(b)))
        max_abs = float(np.max(diff))
        rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        line = f"{what} {list(a.shape)}: max abs {max_abs:.3e}, rel {rel:.3e} (tol {tol:.0e})"
        if rel <= tol:
            self.passed += 1
            print(f"ok   {self.model_name}: {line}")
            return True
        worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
        self.failed += 1
        print(f"FAIL {self.model_name}: {line}; worst element {[int(i) for i in worst]}: "
              f"nnc {a[worst]:.9g}, torch {b[worst]:.9g}")
        return False

    def compare_zero(self, what, nnc, ref, scale, tol):
        """nnc and ref should both be 0 but for rounding: both below tol * scale."""
        a = np.abs(np.asarray(nnc, dtype=np.float64))
        b = np.abs(np.asarray(ref, dtype=np.float64))
        worst = max(float(a.max()), float(b.max()))
        line = (f"{what} {list(a.shape)} (0 in exact arithmetic): max |nnc| {a.max():.3e}, "
                f"max |torch| {b.max():.3e}, {worst / scale:.3e} of the reference scale {scale:.3e} "
                f"(tol {tol:.0e})")
        if np.all(np.isfinite(a)) and worst <= tol * scale:
            self.passed += 1
            print(f"ok   {self.model_name}: {line}")
            return True
        self.failed += 1
        print(f"FAIL {self.model_name}: {line}")
        return False


def to_torch_state(ref, ckpt, model, extra=True):
    """nnc tensors [(name, array)] -> state_dict entries for model."""
    how = {n: (t, h) for n, t, h in ref.names}
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    state = {}
    for name, arr in ckpt:
        if name not in how:
            raise KeyError(f"nnc checkpoint tensor {name!r} {list(arr.shape)} has no entry in the reference's names")
        tname, h = how[name]
        if h == "T":
            arr = arr.T
        elif h == "reshape" and tname in shapes:
            arr = arr.reshape(shapes[tname])
        state[tname] = torch.from_numpy(np.ascontiguousarray(arr))
    if extra:
        for k, v in ref.extra_state.items():
            state[k] = v.clone()
    return state


def from_torch(ref, tensor_of, nnc_name, nnc_shape):
    """The torch tensor that is nnc's nnc_name, in nnc's layout."""
    for n, tname, h in ref.names:
        if n == nnc_name:
            a = tensor_of(tname).detach().cpu().double().numpy()
            if h == "T":
                a = a.T
            return np.ascontiguousarray(a).reshape(nnc_shape)
    raise KeyError(nnc_name)


# Discrete decisions that rounding can tip: a relu input within DELTA of 0,
# a max-pool window whose two largest inputs are within DELTA of each other
# (both relative to the largest magnitude of that call's input).
DELTA = 1e-6
CANDIDATES = 10   # the closest calls explain() considers
MAX_FLIPS = 2     # how many of them it reverses at once (at most 55 tries)
MAX_UNEXPLAINED = 2  # after this many failed searches (a real difference), explain() gives up


class _Decisions:
    """While active, replaces F.relu, torch.relu and F.max_pool2d (nn.ReLU
    and nn.MaxPool2d call these) with versions that can reverse single
    decisions.

    mode "record": computes as usual, and notes every decision within DELTA
    of its boundary as (closeness, op, call number, flat index, margin).
    mode "flip": computes with the decisions at the given (op, call number,
    flat index) reversed: that relu input kept (or dropped), that pooling
    window's runner-up taken as its maximum."""

    def __init__(self, mode, flips=()):
        self.mode, self.flips, self.found, self.calls = mode, set(flips), [], {"relu": 0, "maxpool": 0}

    def _next(self, op):
        k = self.calls[op]
        self.calls[op] += 1
        return k

    def relu(self, x, inplace=False):
        k = self._next("relu")
        if self.mode == "record":
            with torch.no_grad():
                flat = x.detach().reshape(-1)
                scale = float(flat.abs().max())
                near = (flat.abs() <= DELTA * scale).nonzero().reshape(-1)
                self.found += [(abs(float(flat[i])) / scale, "relu", k, int(i), float(flat[i])) for i in near]
            return self.saved["torch.relu"](x)  # F.relu itself calls torch.relu
        mask = (x.detach() > 0).to(x.dtype).reshape(-1)
        lift = torch.zeros_like(mask)
        for op, kk, i in self.flips:
            if op == "relu" and kk == k:
                mask[i] = 1 - mask[i]
                # an input kept although it is below 0 here was above 0
                # on the other side: output |x|, not x, so that a max-pool
                # after the relu takes it over the zeros around it as the
                # other side did (gradient still 1, through x)
                if mask[i] == 1:
                    lift[i] = -2 * x.detach().reshape(-1)[i]
        return x * mask.reshape(x.shape) + lift.reshape(x.shape)

    def max_pool2d(self, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                   return_indices=False):
        ks = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
        if (stride not in (None, ks, (ks, ks)) or padding or dilation != 1 or ceil_mode or return_indices
                or x.dim() != 4 or (not isinstance(kernel_size, int) and tuple(kernel_size) != (ks, ks))):
            return self.saved["F.max_pool2d"](x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
        k = self._next("maxpool")
        n, c, h, w = x.shape
        ho, wo = h // ks, w // ks
        win = (x[:, :, :ho * ks, :wo * ks].reshape(n, c, ho, ks, wo, ks)
               .permute(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, ks * ks))
        order = torch.argsort(win.detach(), dim=-1, descending=True)
        pick = order[..., 0].clone().reshape(-1)
        if self.mode == "record":
            with torch.no_grad():
                top = torch.gather(win, -1, order[..., :2]).reshape(-1, 2)
                gap = top[:, 0] - top[:, 1]
                scale = float(x.abs().max())
                near = ((gap <= DELTA * scale) & (gap > 0)).nonzero().reshape(-1)
                self.found += [(float(gap[i]) / scale, "maxpool", k, int(i), float(gap[i])) for i in near]
        else:
            second = order[..., 1].reshape(-1)
            for op, kk, i in self.flips:
                if op == "maxpool" and kk == k:
                    pick[i] = second[i]
        return torch.gather(win, -1, pick.reshape(n, c, ho, wo, 1)).reshape(n, c, ho, wo)

    def __enter__(self):
        import torch.nn.functional as F

        self.saved = {"F.relu": F.relu, "torch.relu": torch.relu, "F.max_pool2d": F.max_pool2d}
        F.relu = torch.relu = self.relu
        F.max_pool2d = self.max_pool2d
        return self

    def __exit__(self, *exc):
        import torch.nn.functional as F

        F.relu, torch.relu, F.max_pool2d = self.saved["F.relu"], self.saved["torch.relu"], self.saved["F.max_pool2d"]
        return False


def layout(ckpt):
    """Offsets of the checkpoint's tensors in the parameter block.

    The block holds every checkpoint tensor (batch-norm running statistics
    included) in the checkpoint's order: that is how the generated C's
    tensor table lays it out. The caller checks it against the raw
    params0.f32 dump, so a change of layout fails loudly instead of
    comparing the wrong gradients."""
    at, offsets = 0, {}
    for name, arr in ckpt:
        offsets[name] = (at, arr.shape)
        at += arr.size
    return offsets, at


def run(ref, argv=None):
    """ref: a Reference, or a function of the variant name (None for the
    model as it is in dsl-examples/) that returns one."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2, 3):
        print(f"usage: {sys.argv[0]} OUTDIR [LABEL [VARIANT]]  (OUTDIR written by tests/torch_agree.c;"
              " LABEL names the model in the output; VARIANT as tests/torch_agree.sh derives it)")
        sys.exit(2)
    d = argv[0]
    if callable(ref):
        ref = ref(argv[2] if len(argv) == 3 else None)
    torch.manual_seed(0)
    c = Checker(argv[1] if len(argv) >= 2 else ref.name)
    for note in ref.notes:
        print(f"note {c.model_name}: {note}")
    try:
        _run(ref, d, c)
    except Exception as e:  # a broken reference or unreadable files: one failure, not a crash
        import traceback

        traceback.print_exc(file=sys.stdout)
        c.fail("reference", f"{type(e).__name__}: {e}")
    print(f"{c.passed} passed, {c.failed} failed")
    sys.exit(0 if c.failed == 0 else 1)


def _run(ref, d, c):
    meta = read_meta(d)
    B, nin, nout = meta["batch"], meta["input_size"], meta["output_size"]
    nb, steps, count = meta["batches"], meta["train_steps"], meta["param_count"]
    classes = meta["classes"]
    if int(np.prod(ref.input_shape)) != nin:
        c.fail("input shape", f"reference says {ref.input_shape}, nnc has {nin} floats per sample")
        return
    xs = read_f32(d, "x.f32", [nb, B] + ref.input_shape)
    if classes:
        ys = np.fromfile(os.path.join(d, "y.i32"), dtype="<i4").astype(np.int64).reshape(nb, B)
    else:
        ys = read_f32(d, "y.f32", [nb, B, meta["label_size"]])

    def batch(i):
        x = t32(xs[i])
        y = torch.from_numpy(ys[i]) if classes else t32(ys[i])
        return x, y

    # -- the checkpoint, its names and the parameter block's layout
    init = read_safetensors(os.path.join(d, "init.safetensors"))
    offsets, used = layout(init)
    params0 = read_f32(d, "params0.f32")
    if used != count:
        c.fail("layout", f"the checkpoint's tensors hold {used} floats, the parameter block {count}")
        return
    bad = [n for n, a in init if not np.array_equal(params0[offsets[n][0]:offsets[n][0] + a.size].reshape(a.shape), a)]
    if bad:
        c.fail("layout", f"the parameter block does not hold {', '.join(bad)} where the checkpoint order puts them")
        return
    c.ok("layout", f"{len(init)} checkpoint tensors, parameter block of {count} floats in checkpoint order")
    params = [(n, a) for n, a in init if n not in ref.buffers]

    def block_tensor(vec, name):
        at, shape = offsets[name]
        return vec[at:at + int(np.prod(shape))].reshape(shape)

    def fresh_model():
        model = ref.make_model()
        model.load_state_dict(to_torch_state(ref, init, model), strict=True)
        return model

    model = fresh_model()
    c.ok("load_state_dict(strict=True)", ", ".join(f"{n}->{t}" if n != t else n for n, t, _ in ref.names))

    # -- 1. evaluation mode on batch 0
    x0, y0 = batch(0)
    model.eval()
    with torch.no_grad():
        out, loss = ref.forward(model, x0, y0)
    c.compare("predict batch 0 (eval)", read_f32(d, "predict0.f32", [B, nout]),
              out.reshape(B, nout).numpy(), TOL_ONE_STEP)
    c.compare("evaluate loss batch 0 (eval)", read_f32(d, "evalloss0.f32"), [loss.item()], TOL_ONE_STEP)
    # the same with nnc's weights after its 20 steps: trained running statistics,
    # and no dependence on how training went (dropout masks, rounding)
    final = read_safetensors(os.path.join(d, "final.safetensors"))
    nnc_predict20 = read_f32(d, "predict20.f32", [B, nout])
    trained = ref.make_model()
    trained.load_state_dict(to_torch_state(ref, final, trained), strict=True)
    trained.eval()
    with torch.no_grad():
        out, _ = ref.forward(trained, x0, y0)
    c.compare("predict batch 0 (eval) with nnc's weights after 20 steps", nnc_predict20,
              out.reshape(B, nout).numpy(), TOL_ONE_STEP)

    if ref.skip_training:
        print(f"skip {c.model_name}: training-mode comparisons: {ref.skip_training}")
        return

    train_forward = ref.train_forward or (lambda m, x, y, _nnc_out: ref.forward(m, x, y))

    def torch_grads(model):
        named = dict(model.named_parameters())

        def grad_of(tname):
            g = named[tname].grad
            return g if g is not None else torch.zeros_like(named[tname])

        return {n: from_torch(ref, grad_of, n, a.shape) for n, a in params}

    def grads_match(nnc_g, torch_g):
        """The per-tensor test of compare_grads, silently."""
        for n, _ in params:
            a, b = np.asarray(nnc_g[n], np.float64), np.asarray(torch_g[n], np.float64)
            if n in ref.zero_grads:
                scale = float(np.max(np.abs(torch_g[ref.zero_grads[n]])))
                if max(np.abs(a).max(), np.abs(b).max()) > TOL_ONE_STEP * scale:
                    return False
            elif not np.max(np.abs(a - b)) <= TOL_ONE_STEP * np.max(np.abs(b)):
                return False
        return True

    unexplained = [0]

    def explain(state, x, y, nnc_out, nnc_g):
        """When nnc's gradients differ from torch's, looks for relu decisions
        on inputs within rounding of 0 that nnc took the other way: torch in
        float64 from the same weights, every combination of those decisions.
        Returns (torch's gradients with the matching decisions, description)
        or None."""
        if unexplained[0] >= MAX_UNEXPLAINED:
            return None
        def grads_with(patch):
            m = ref.make_model()
            m.load_state_dict(state, strict=True)
            m = m.double()
            m.train()
            with patch:
                _, loss = train_forward(m, x.double() if x.is_floating_point() else x,
                                        y.double() if y.is_floating_point() else y, nnc_out)
                loss.backward()
            return torch_grads(m), patch

        _, rec = grads_with(_Decisions("record"))
        found = [f[1:] for f in sorted(rec.found)[:CANDIDATES]]
        for r in range(1, MAX_FLIPS + 1):
            for chosen in itertools.combinations(found, r):
                g, _ = grads_with(_Decisions("flip", [(op, k, i) for op, k, i, _ in chosen]))
                if grads_match(nnc_g, g):
                    where = "; ".join(
                        f"relu {k} element {i} (input {v:.2e})" if op == "relu"
                        else f"max-pool {k} window {i} (top two {v:.2e} apart)" for op, k, i, v in chosen)
                    return g, f"matches torch in float64 with these decisions reversed: {where}"
        unexplained[0] += 1
        return None

    def compare_grads(what, nnc_of, torch_of):
        """nnc_of, torch_of: name -> array (a leading step axis is allowed)."""
        for n, _ in params:
            if n in ref.zero_grads:
                scale = float(np.max(np.abs(torch_of(ref.zero_grads[n]))))
                c.compare_zero(f"{what} {n}", nnc_of(n), torch_of(n), scale, TOL_ONE_STEP)
            else:
                c.compare(f"{what} {n}", nnc_of(n), torch_of(n), TOL_ONE_STEP)

    # -- 1. one step of gradients, training mode
    model.train()
    model.zero_grad()
    nnc_out0 = read_f32(d, "trainout0.f32", [B, nout])
    state = copy.deepcopy(model.state_dict())
    out, loss = train_forward(model, x0, y0, nnc_out0)
    loss.backward()
    c.compare("compute_gradients loss batch 0 (train)", read_f32(d, "loss0.f32"), [loss.item()], TOL_ONE_STEP)
    c.compare("train output batch 0 (train)", nnc_out0, out.detach().reshape(B, nout).numpy(), TOL_ONE_STEP)
    grads0 = read_f32(d, "grads0.f32")
    nnc_g = {n: block_tensor(grads0, n) for n, _ in params}
    tg = torch_grads(model)
    if not grads_match(nnc_g, tg):
        found = explain(state, x0, y0, nnc_out0, nnc_g)
        if found:
            tg, why = found
            print(f"note {c.model_name}: grad batch 0: {why}")
    compare_grads("grad", lambda n: nnc_g[n], lambda n: tg[n])

    nnc_losses = read_f32(d, "losses.f32")
    nnc_outs = read_f32(d, "trainouts.f32", [steps, B, nout])
    stepgrads = np.memmap(os.path.join(d, "stepgrads.f32"), dtype="<f4", mode="r", shape=(steps, count))

    # -- 2. 20 steps replayed with nnc's gradients
    model = fresh_model()
    model.train()
    opt = ref.make_optimizer(model)
    losses, outs, grads = [], [], {n: [] for n, _ in params}
    branched = 0  # the first replay step whose gradient took a reversed decision
    for s in range(steps):
        x, y = batch(s % nb)
        opt.zero_grad()
        state = copy.deepcopy(model.state_dict())
        out, loss = train_forward(model, x, y, nnc_outs[s])
        loss.backward()
        losses.append(loss.item())
        outs.append(out.detach().reshape(B, nout).numpy())
        nnc_g = {n: np.array(block_tensor(stepgrads[s], n)) for n, _ in params}
        tg = torch_grads(model)
        if not grads_match(nnc_g, tg):
            found = explain(state, x, y, nnc_outs[s], nnc_g)
            if found:
                tg, why = found
                print(f"note {c.model_name}: replay step {s + 1} grad: {why}")
                branched = branched or s + 1
        for n, g in tg.items():
            grads[n].append(g)
        # then step with nnc's gradients of this step
        named = dict(model.named_parameters())
        for tname, g in to_torch_state(ref, list(nnc_g.items()), model, extra=False).items():
            named[tname].grad = g.to(named[tname].dtype)
        opt.step()
    what = f"replay steps 1..{steps}"
    c.compare(f"{what} losses", nnc_losses, losses, TOL_ONE_STEP)
    c.compare(f"{what} train outputs", nnc_outs, np.stack(outs), TOL_ONE_STEP)
    compare_grads(f"{what} grad", lambda n: np.stack([block_tensor(stepgrads[s], n) for s in range(steps)]),
                  lambda n: np.stack(grads[n]))
    sd = model.state_dict()
    for name, arr in final:
        tol = TOL_ONE_STEP if name in ref.buffers else TOL_REPLAY
        c.compare(f"{what}: {name}", arr, from_torch(ref, lambda t: sd[t], name, arr.shape), tol)
    model.eval()
    with torch.no_grad():
        out, _ = ref.forward(model, x0, y0)
    c.compare(f"{what}: predict batch 0 (eval)", nnc_predict20, out.reshape(B, nout).numpy(), TOL_ONE_STEP)

    # -- 3. 20 steps free-running from the same start
    if ref.free_running:
        print(f"skip {c.model_name}: free-running {steps} steps: {ref.free_running}")
        return
    model = fresh_model()
    model.train()
    opt = ref.make_optimizer(model)
    losses, outs = [], []
    for s in range(steps):
        x, y = batch(s % nb)
        opt.zero_grad()
        out, loss = train_forward(model, x, y, nnc_outs[s])
        loss.backward()
        opt.step()
        losses.append(loss.item())
        outs.append(out.detach().reshape(B, nout).numpy())
    tol = ref.tol_trained
    if branched:
        # nnc's trajectory took a decision at step `branched` that torch
        # takes the other way at the same weights (the replay's note), so
        # from there the two free-running runs are different runs: compare
        # the steps up to it, whose outputs come from weights before it
        what = f"free-running steps 1..{branched}"
        c.compare(f"{what} losses", nnc_losses[:branched], losses[:branched], tol)
        c.compare(f"{what} train outputs", nnc_outs[:branched], np.stack(outs[:branched]), tol)
        print(f"skip {c.model_name}: free-running weights after {steps} steps: nnc's step {branched} "
              "took a decision torch takes the other way (the replay's note), so the runs part there")
        return
    what = f"free-running steps 1..{steps}"
    c.compare(f"{what} losses", nnc_losses, losses, tol)
    c.compare(f"{what} train outputs", nnc_outs, np.stack(outs), tol)
    sd = model.state_dict()
    for name, arr in final:
        c.compare(f"{what}: {name}", arr, from_torch(ref, lambda t: sd[t], name, arr.shape), tol)
    model.eval()
    with torch.no_grad():
        out, _ = ref.forward(model, x0, y0)
    c.compare(f"{what}: predict batch 0 (eval)", nnc_predict20, out.reshape(B, nout).numpy(), tol)
