#!/usr/bin/python3
"""Writes a small CIFAR-10-format directory for tests: data_batch_1..5.bin
and test_batch.bin, each of RECORDS records of 1 label byte + 3072 pixel
bytes (3x32x32, channel-major), as the real binary version is laid out.
Each class gets its own mean colour so a network can learn something.

Usage: make_cifar.py DIR [RECORDS]"""
import os
import random
import sys

def record(rng, label):
    base = [(label * 25 + 20 * c) % 256 for c in range(3)]
    pixels = bytearray()
    for c in range(3):
        pixels += bytes(min(255, max(0, base[c] + rng.randint(-30, 30)))
                        for _ in range(1024))
    return bytes([label]) + bytes(pixels)

def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    rng = random.Random(1)
    os.makedirs(out, exist_ok=True)
    names = ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        with open(os.path.join(out, name), "wb") as f:
            for i in range(n):
                f.write(record(rng, i % 10))

main()
