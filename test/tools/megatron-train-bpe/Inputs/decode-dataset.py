"""Decodes a uint16 indexed dataset with a GPT-2-format vocab.json, independently of the C++ tokenizer, and checks
that document d is the text of line d of a JSON-lines file (its sentences joined) followed by <|endoftext|>.

    decode-dataset.py PREFIX VOCAB.json INPUT.jsonl
"""
import json
import struct
import sys


def bytes_to_unicode():
    # GPT-2's map of the 256 bytes to printable characters (OpenAI's encoder.py).
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


prefix, vocab_path, input_path = sys.argv[1:4]
vocab = json.load(open(vocab_path, encoding="utf-8"))
eod = vocab["<|endoftext|>"]
byte_of = {c: b for b, c in bytes_to_unicode().items()}
spelling = {i: t for t, i in vocab.items()}
idx = open(prefix + ".idx", "rb").read()
assert idx[:9] == b"MMIDIDX\x00\x00", "magic"
assert idx[17] == 8, "dtype uint16"
sequences, documents = struct.unpack("<QQ", idx[18:34])
lengths = struct.unpack("<%di" % sequences, idx[34:34 + 4 * sequences])
doc_index = struct.unpack("<%dq" % documents, idx[34 + 12 * sequences:])
tokens = struct.unpack("<%dH" % (len(open(prefix + ".bin", "rb").read()) // 2), open(prefix + ".bin", "rb").read())
starts = [0]
for n in lengths:
    starts.append(starts[-1] + n)
lines = [json.loads(line) for line in open(input_path, encoding="utf-8")]
assert len(lines) == documents - 1, (len(lines), documents)
for d, line in enumerate(lines):
    ids = tokens[starts[doc_index[d]]:starts[doc_index[d + 1]]]
    assert ids[-1] == eod, "document %d does not end with <|endoftext|>" % d
    text = bytes(byte_of[c] for i in ids[:-1] for c in spelling[i]).decode("utf-8")
    want = line["text"] if isinstance(line["text"], str) else "".join(line["text"])
    assert text == want, "document %d: %r != %r" % (d, text, want)
print("%d documents, %d tokens, all decode to their texts" % (len(lines), len(tokens)))
