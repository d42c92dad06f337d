"""manifest.py — the case loop the PyTorch references of tests/train share
(optim_torch.py, sched_torch.py, smooth_torch.py).

run(check) reads the manifest named by argv[1], one "LABEL|SPEC|FILE"
line per case, calls check(SPEC, FILE) for each (None when the case
agrees, else why not; check may print the rest of an "ok: ..." line),
prints "LABEL: ok..." or "LABEL: FAIL why", then "N passed, N failed",
and returns the exit status.
"""
import sys


def run(check):
    passed = failed = 0
    for line in open(sys.argv[1]):
        label, spec, path = line.rstrip("\n").split("|")
        print(f"{label}: ", end="")
        try:
            why = check(spec, path)
        except Exception as e:  # a missing or malformed file
            why = f"{type(e).__name__}: {e}"
        if why:
            print(f"FAIL {why}")
            failed += 1
        else:
            print()
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
