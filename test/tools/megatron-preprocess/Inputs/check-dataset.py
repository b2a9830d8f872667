"""Checks an indexed dataset byte for byte against the documents it should hold.

    check-dataset.py PREFIX DTYPE DOCUMENTS
    check-dataset.py --write PREFIX DTYPE DOCUMENTS

DOCUMENTS is JSON: a list of documents, each a list of sequences, each a list of token ids. The expected
PREFIX.idx and PREFIX.bin are built here from Megatron-Core's format (megatron/core/datasets/indexed_dataset.py:
magic, version 1, dtype code, sequence count, document-index count, int32 lengths, int64 byte pointers, int64
document indices, all little-endian; the .bin holds the tokens back to back), independently of the C++ writer.
Prints a summary, or the first differing byte and exits 1. With --write, writes those files instead (inputs
for the merge tests).
"""
import json
import struct
import sys

# Megatron-Core's DType codes: (code, struct format of one token).
DTYPES = {"uint8": (1, "B"), "int8": (2, "b"), "int16": (3, "h"), "int32": (4, "i"), "int64": (5, "q"),
          "float64": (6, "d"), "float32": (7, "f"), "uint16": (8, "H")}


def expected_files(dtype, documents):
    code, fmt = DTYPES[dtype]
    size = struct.calcsize("<" + fmt)
    lengths, pointers, document_indices, data = [], [], [0], b""
    for document in documents:
        for sequence in document:
            pointers.append(len(data))
            lengths.append(len(sequence))
            data += struct.pack("<%d%s" % (len(sequence), fmt), *sequence)
        document_indices.append(len(lengths))
    idx = b"MMIDIDX\x00\x00" + struct.pack("<Q", 1) + struct.pack("<B", code)
    idx += struct.pack("<Q", len(lengths)) + struct.pack("<Q", len(document_indices))
    idx += struct.pack("<%di" % len(lengths), *lengths)
    idx += struct.pack("<%dq" % len(pointers), *pointers)
    idx += struct.pack("<%dq" % len(document_indices), *document_indices)
    assert len(data) == sum(lengths) * size
    return idx, data


def compare(path, expected):
    with open(path, "rb") as f:
        actual = f.read()
    if actual == expected:
        return True
    for i in range(min(len(actual), len(expected))):
        if actual[i] != expected[i]:
            print("%s: byte %d is 0x%02x, expected 0x%02x" % (path, i, actual[i], expected[i]))
            break
    else:
        print("%s: %d bytes, expected %d" % (path, len(actual), len(expected)))
    return False


def main():
    args = sys.argv[1:]
    write = args[0] == "--write"
    if write:
        args = args[1:]
    prefix, dtype, documents = args[0], args[1], json.loads(args[2])
    idx, data = expected_files(dtype, documents)
    if write:
        with open(prefix + ".idx", "wb") as f:
            f.write(idx)
        with open(prefix + ".bin", "wb") as f:
            f.write(data)
        return 0
    ok = compare(prefix + ".idx", idx) & compare(prefix + ".bin", data)
    sequences = sum(len(d) for d in documents)
    tokens = sum(len(s) for d in documents for s in d)
    print("%s: %s, %d documents, %d sequences, %d %s tokens" % (
        prefix.rsplit("/", 1)[-1], "identical" if ok else "DIFFERENT", len(documents), sequences, tokens, dtype))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
