#!/usr/bin/python3
"""Checks that safetensors files written by the nnc runtime read correctly in Python.

Usage: /usr/bin/python3 tests/test_safetensors_torch.py FILE...
FILEs come from tests/st_export (F32 and F64 versions of one model). The
header is parsed with json, the data with numpy and torch.frombuffer, and
everything is compared with the values st_export.c writes. The layout
rules are those of the reference safetensors loader, which is not
installed here.

Exit status: 0 pass, 1 fail, 77 skipped (numpy or torch missing).
"""
import json
import struct
import sys
import zlib

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)

# Must match tests/st_export.c.
EXPECTED = {
    "fc1.weight": ([4, 3], [(i - 5) * 0.25 for i in range(12)]),
    "fc1.bias": ([4], [0.5 * i for i in range(4)]),
    "scale": ([], [3.0]),
    'odd "name"\\\u00e9': ([1, 2, 1], [1e-3, -2e10]),
}
EXPECTED_META = {"epoch": "7", "note": 'h\u00e9llo "world"\n', "format": "pt"}
TORCH_DTYPE = {"F32": torch.float32, "F64": torch.float64}
NUMPY_DTYPE = {"F32": "<f4", "F64": "<f8"}


def check(path):
    """Returns a list of problems with the file at path."""
    problems = []
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    if n % 8:
        problems.append(f"header length {n} is not a multiple of 8")
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]

    meta = header.pop("__metadata__", {})
    checksum = meta.pop("nnc_checksum", None)
    if meta != EXPECTED_META:
        problems.append(f"metadata {meta!r}, expected {EXPECTED_META!r}")
    if checksum != f"{zlib.crc32(data):08x}":
        problems.append(f"nnc_checksum {checksum}, zlib.crc32 gives {zlib.crc32(data):08x}")
    if set(header) != set(EXPECTED):
        problems.append(f"tensors {sorted(header)}, expected {sorted(EXPECTED)}")
        return problems

    # Reference-loader layout: sorted by offset, contiguous, covering all data.
    end = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, stop = info["data_offsets"]
        if begin != end:
            problems.append(f"{name}: starts at {begin}, previous tensor ends at {end}")
        end = stop
    if end != len(data):
        problems.append(f"tensors end at {end}, data has {len(data)} bytes")

    for name, (shape, values) in EXPECTED.items():
        info = header[name]
        dtype = info["dtype"]
        begin, stop = info["data_offsets"]
        if info["shape"] != shape:
            problems.append(f"{name}: shape {info['shape']}, expected {shape}")
            continue
        want = np.array(values, dtype=NUMPY_DTYPE[dtype]).reshape(shape)
        got = np.frombuffer(data[begin:stop], dtype=NUMPY_DTYPE[dtype]).reshape(shape)
        if not np.array_equal(got, want):
            problems.append(f"{name}: numpy reads {got.tolist()}, expected {want.tolist()}")
        t = torch.frombuffer(bytearray(data[begin:stop]), dtype=TORCH_DTYPE[dtype]).reshape(shape)
        if not torch.equal(t, torch.from_numpy(want.astype(want.dtype.newbyteorder("=")))):
            problems.append(f"{name}: torch reads {t.tolist()}, expected {want.tolist()}")
    return problems


def main(paths):
    if not paths:
        print(__doc__)
        return 2
    failed = 0
    for path in paths:
        problems = check(path)
        for p in problems:
            print(f"{path}: {p}")
        failed += bool(problems)
        print(f"{'FAIL' if problems else 'ok'}: {path}")
    print(f"{len(paths) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
