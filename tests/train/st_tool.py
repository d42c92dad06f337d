"""st_tool.py — compares tensors of two safetensors files, byte for byte.

usage: st_tool.py same|differ|absent A B NAME...
       st_tool.py print A NAME
  same    every NAME has the same dtype, shape and bytes in A and B
  differ  every NAME is in both, with different bytes
  absent  no NAME is in B (A is not read)
  print   the values of F32 tensor NAME of A, one a line (%.9g)
Exit status 0 when it holds, 1 (with the reason) when not.
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items()}


if sys.argv[1] == "print":
    dtype, _, raw = read(sys.argv[2])[sys.argv[3]]
    assert dtype == "F32", dtype
    for v in struct.unpack("<%df" % (len(raw) // 4), raw):
        print("%.9g" % v)
    sys.exit(0)
what, a, b, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
tb = read(b)
if what == "absent":
    bad = [n for n in names if n in tb]
    if bad:
        print(f"{b} has {', '.join(bad)}")
        sys.exit(1)
    sys.exit(0)
ta = read(a)
for n in names:
    if n not in ta or n not in tb:
        print(f"{n} is missing from {a if n not in ta else b}")
        sys.exit(1)
    if (ta[n] == tb[n]) != (what == "same"):
        print(f"{n} is {'different' if what == 'same' else 'the same'} in {a} and {b}")
        sys.exit(1)
