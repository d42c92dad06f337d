"""make_idx.py — a small Fashion-MNIST for quick runs of the examples:
the first NTRAIN training and NTEST test images and labels of the IDX
files in SRC, written to DST as gzip IDX files under the same names (the
counts in their headers rewritten). Fashion-MNIST's files mix the
classes, so the first images hold every class.

usage: make_idx.py SRC DST NTRAIN NTEST
"""
import gzip
import os
import struct
import sys


def subset(src, dst, name, count):
    with gzip.open(os.path.join(src, name + ".gz"), "rb") as f:
        magic, n = struct.unpack(">II", f.read(8))
        dims = magic & 0xFF
        rest = struct.unpack(">" + "I" * (dims - 1), f.read(4 * (dims - 1)))
        if count > n:
            sys.exit(f"{name}: {n} records, {count} asked for")
        size = 1
        for d in rest:
            size *= d
        body = f.read(count * size)
    with gzip.open(os.path.join(dst, name + ".gz"), "wb") as f:
        f.write(struct.pack(">II", magic, count))
        f.write(struct.pack(">" + "I" * len(rest), *rest))
        f.write(body)


def main():
    src, dst, ntrain, ntest = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    os.makedirs(dst, exist_ok=True)
    for split, count in (("train", ntrain), ("t10k", ntest)):
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            subset(src, dst, f"{split}-{kind}", count)


main()
