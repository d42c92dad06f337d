"""Shared machinery of the PyTorch agreement test (tests/torch_agree.sh).

Each tests/torch_ref/MODEL.py is a hand-written PyTorch model that follows
the seed's own code; it describes itself with a Reference and calls run().
run() reads what tests/torch_agree.c wrote for the nnc-generated model,
loads nnc's initial weights into the torch model (load_state_dict with
strict=True, through the reference's explicit name map), replays the same
batches and compares, in float32 on both sides:

 1. one step (batch 0, from the initial weights)
      predict (evaluation mode), evaluate's loss (evaluation mode),
      compute_gradients' loss and outputs (training mode), every gradient
 2. 20 steps, teacher-forced ("replay"): torch starts from nnc's initial
      weights and at every step computes its own loss, outputs and
      gradients at its current weights, compares them with nnc's for that
      step, then hands nnc's gradients of that step to its own optimizer.
      After 20 steps: every checkpoint tensor (weights and batch-norm
      running statistics) and predict on batch 0.
 3. 20 steps, free-running: torch trains on its own gradients, as a user
      would; then the losses and outputs along the way, every checkpoint
      tensor, and predict on batch 0.

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
      see the same gradients, so only the update arithmetic differs (nnc
      computes it in double and rounds once, torch in float32): a few ulps
      per step.
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
    out, loss = train_forward(model, x0, y0, nnc_out0)
    loss.backward()
    c.compare("compute_gradients loss batch 0 (train)", read_f32(d, "loss0.f32"), [loss.item()], TOL_ONE_STEP)
    c.compare("train output batch 0 (train)", nnc_out0, out.detach().reshape(B, nout).numpy(), TOL_ONE_STEP)
    grads0 = read_f32(d, "grads0.f32")
    tg = torch_grads(model)
    compare_grads("grad", lambda n: block_tensor(grads0, n), lambda n: tg[n])

    nnc_losses = read_f32(d, "losses.f32")
    nnc_outs = read_f32(d, "trainouts.f32", [steps, B, nout])
    stepgrads = np.memmap(os.path.join(d, "stepgrads.f32"), dtype="<f4", mode="r", shape=(steps, count))
    final = read_safetensors(os.path.join(d, "final.safetensors"))
    nnc_predict20 = read_f32(d, "predict20.f32", [B, nout])

    # -- 2. 20 steps replayed with nnc's gradients
    model = fresh_model()
    model.train()
    opt = ref.make_optimizer(model)
    losses, outs, grads = [], [], {n: [] for n, _ in params}
    for s in range(steps):
        x, y = batch(s % nb)
        opt.zero_grad()
        out, loss = train_forward(model, x, y, nnc_outs[s])
        loss.backward()
        losses.append(loss.item())
        outs.append(out.detach().reshape(B, nout).numpy())
        for n, g in torch_grads(model).items():
            grads[n].append(g)
        # then step with nnc's gradients of this step
        nnc_grads = [(n, np.array(block_tensor(stepgrads[s], n))) for n, _ in params]
        named = dict(model.named_parameters())
        for tname, g in to_torch_state(ref, nnc_grads, model, extra=False).items():
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
