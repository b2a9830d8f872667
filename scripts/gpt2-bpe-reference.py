#!/usr/bin/env python3
"""Writes the expected GPT-2 token ids of the tokenizer's unit tests (test/unit/tokenizer/gpt2-reference.tsv).

The reference is independent of the C++ code: it is the algorithm of OpenAI's encoder.py, which Megatron-LM's
GPT2BPETokenizer (megatron/training/tokenizer/gpt2_tokenization.py) copies, run with the `regex` module on GPT-2's
vocab.json and merges.txt. Every case is also encoded by Hugging Face's `tokenizers` (a ByteLevel BPE in Rust,
its own pattern engine), and the script fails if the two disagree.

Usage (a virtual environment made with Debian's python3; PyPI is reachable):
    /usr/bin/python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install regex tokenizers
    /tmp/tokvenv/bin/python scripts/gpt2-bpe-reference.py --data ../shared/data/gpt2 \
        -o test/unit/tokenizer/gpt2-reference.tsv

Output: '#' comment lines, then one case per line: category, the text's UTF-8 bytes in hexadecimal, the ids
separated by spaces (empty for an empty text), separated by tabs.

Random texts use only code points that Unicode 14.0 (Python 3.11's unicodedata) assigns, so that the answer does
not depend on the Unicode version of the reference or of ICU (docs/tokenizer.md).
"""

import argparse
import hashlib
import json
import random
import sys
import unicodedata

import regex

PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(n) for n in cs]))


def get_pairs(word):
    pairs = set()
    prev = word[0]
    for char in word[1:]:
        pairs.add((prev, char))
        prev = char
    return pairs


class Encoder:
    """OpenAI's encoder.py (and Megatron-LM's GPT2Tokenizer.bpe/tokenize), unchanged in substance."""

    def __init__(self, encoder, bpe_merges):
        self.encoder = encoder
        self.byte_encoder = bytes_to_unicode()
        self.bpe_ranks = dict(zip(bpe_merges, range(len(bpe_merges))))
        self.cache = {}
        self.pat = regex.compile(PATTERN)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        pairs = get_pairs(word)
        if not pairs:
            return token
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = " ".join(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        ids = []
        for token in regex.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids


ENGLISH = """\
The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined movable
metal type, oil-based inks and a wooden press adapted from those used to make wine. Within fifty years, presses
had spread to more than two hundred cities in a dozen European countries; by 1500 they had produced more than
twenty million volumes. It wasn't merely a faster way to copy books: it changed who could read, what they read,
and how ideas moved from one place to another.

"Where are you going?" she asked. "To the station," he said, "and then, if the trains are running, to London."
They'd been arguing for an hour; neither of them remembered how it had started. I'm sure you'll agree that
we've all been there — tired, hungry, and convinced that the other person is being unreasonable.

Results: accuracy improved from 71.3% to 84.9% (n = 12,480; p < 0.001). See Table 2 and Fig. 3(b) for details.
Contact: support@example.com or call +1 (555) 010-4477 before 5:30 p.m. on weekdays.
"""

FIXED = [
    ("empty", ""),
    ("ascii", "Hello world"),
    ("ascii", "Hello, world!"),
    ("ascii", "The quick brown fox jumps over the lazy dog."),
    ("ascii", ENGLISH),
    ("ascii", "a"),
    ("ascii", " "),
    ("ascii", "x y z"),
    ("ascii", "GPT-2 is a language model trained on WebText."),
    ("ascii", "def encode(self, text):\n    return [self.encoder[t] for t in text]\n"),
    ("ascii", '{"key": [1, 2, 3], "nested": {"a": null}}'),
    ("ascii", "https://www.example.com/path/to/page?query=1&b=2#frag"),
    ("contractions", "it's"),
    ("contractions", "don't"),
    ("contractions", "they're"),
    ("contractions", "we've"),
    ("contractions", "I'm"),
    ("contractions", "we'll"),
    ("contractions", "he'd"),
    ("contractions", "It's what they're saying: we've seen it, I'm sure, we'll see, he'd know, don't ask."),
    ("contractions", "IT'S DON'T THEY'RE WE'VE I'M WE'LL HE'D"),
    ("contractions", "It'S Don'T They'Re We'Ve I'M We'Ll He'D"),
    ("contractions", "'s 't 're 've 'm 'll 'd"),
    ("contractions", "'S 'T 'RE 'VE 'M 'LL 'D"),
    ("contractions", "''s '''t 's's"),
    ("contractions", "rock'n'roll o'clock y'all ma'am"),
    ("contractions", "'sa 'tis 'really 'very 'mine 'llama 'dog"),
    ("contractions", "’s ’t it’s don’t"),
    ("contractions", "'"),
    ("contractions", "' s"),
    ("contractions", "the dogs' bones"),
    ("whitespace", "a  b"),
    ("whitespace", "a   b"),
    ("whitespace", "a    b    c"),
    ("whitespace", "   leading"),
    ("whitespace", "trailing   "),
    ("whitespace", "trailing "),
    ("whitespace", "   "),
    ("whitespace", "\n"),
    ("whitespace", "\n\n"),
    ("whitespace", "line one\nline two\n\nline four\n"),
    ("whitespace", "a\n\n\nb"),
    ("whitespace", "a \n b"),
    ("whitespace", "a\n b"),
    ("whitespace", "a \nb"),
    ("whitespace", "\tindented\n\t\tmore\n"),
    ("whitespace", "a\tb\t\tc \t d"),
    ("whitespace", "\r\n\r\nwindows\r\n"),
    ("whitespace", " \n \n "),
    ("whitespace", "x\u00a0y\u00a0\u00a0z"),
    ("whitespace", "x\u3000y\u2003z\u2028w\u2029v\u0085u"),
    ("whitespace", "x\u200by\ufeffz\u180ew"),
    ("whitespace", "x\x0by\x0cz\x1cw\x1dv\x1eu\x1ft"),
    ("whitespace", "end with newline and spaces \n   "),
    ("whitespace", "  \u00a0x"),
    ("whitespace", " \u00a0"),
    ("accents", "café"),
    ("accents", "naïve façade résumé coöperate"),
    ("accents", "cafe\u0301 nai\u0308ve"),
    ("accents", "Ångström über Straße Øresund Łódź"),
    ("accents", "Việt Nam, tiếng Việt có dấu"),
    ("cjk", "你好，世界！"),
    ("cjk", "日本語のテキストです。東京は日本の首都です。"),
    ("cjk", "한국어 텍스트입니다. 서울은 한국의 수도입니다."),
    ("cjk", "机器学习是人工智能的一个分支，它使计算机能够在没有明确编程的情况下从数据中学习。深度学习是机器学习的一个子领域，"
            "它使用多层神经网络来学习数据的表示。"),
    ("cjk", "中文English混合text"),
    ("emoji", "👍"),
    ("emoji", "I love it 😀😃😄!"),
    ("emoji", "👍🏽 👨‍👩‍👧‍👦 🇯🇵 🏳️‍🌈"),
    ("emoji", "🎉🎉🎉 party 🎉"),
    ("emoji", "a😀b"),
    ("mixed", "Привет, мир! Γειά σου Κόσμε! שלום עולם! مرحبا بالعالم! नमस्ते दुनिया! สวัสดีชาวโลก"),
    ("mixed", "English, русский, ελληνικά, עברית, العربية, हिन्दी, ไทย, 中文, 日本語, 한국어."),
    ("mixed", "ÀÉÎÕÜ àéîõü ĀĒĪŌŪ"),
    ("mixed", "Ελληνικά123русский"),
    ("numbers", "12345"),
    ("numbers", "3.14159265358979"),
    ("numbers", "1,000,000 and 2.5e-10"),
    ("numbers", " 42 1 2 3"),
    ("numbers", "2024-11-21T12:34:56Z"),
    ("numbers", "٣٤٥ ۱۲۳ १२३ ๑๒๓"),
    ("numbers", "x² + y³ = z½ ⅓ Ⅻ ①②"),
    ("numbers", "abc123def 123abc"),
    ("numbers", "1234567890123456789012345678901234567890"),
    ("punctuation", "!!!???"),
    ("punctuation", "Wait... what?!"),
    ("punctuation", "---- ==== ____ ****"),
    ("punctuation", " ---"),
    ("punctuation", "(a) [b] {c} <d>"),
    ("punctuation", "«quoted» “quoted” ‘single’ — – …"),
    ("punctuation", "@#$%^&*()_+-=[]{}|;':\",./<>?`~\\"),
    ("punctuation", "<|endoftext|>"),
    ("punctuation", "first document<|endoftext|>second document"),
    ("punctuation", "a'b'c"),
    ("punctuation", "!'s"),
    ("long", "a" * 500),
    ("long", "ab" * 300),
    ("long", "Pneumonoultramicroscopicsilicovolcanoconiosis" * 8),
    ("long", " " * 200 + "x"),
    ("long", "\n" * 150),
    ("long", "!" * 300),
    ("long", "1" * 300),
    ("long", "日本" * 150),
    ("long", "😀" * 100),
    ("long", "ACGTTGCAAGCTAGCTAGGATCCGATCGATCGTAGCTAGCTAGCTAGCATCGATCGACTAGCTAGCTAGCATCGATGCTAGCTAGCATGCATCGATCGAT" * 3),
]


def assigned(c):
    return unicodedata.category(c) not in ("Cn", "Cs", "Co")


def random_cases(rng, count):
    ascii_letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    pools = [
        ascii_letters * 3,
        "0123456789",
        " " * 8 + "\n\t\r",
        "'" * 4 + "sStTrReEvVmMlLdD",
        "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~",
        "àéîõüßçñøåæœÀÉÎÕÜ",
        "\u0301\u0308\u0327",
        "你好世界日本語東京한국어",
        "😀👍🏽🎉🇯🇵\u200d",
        "Привет Γειά שלום مرحبا नमस्ते",
        "\u00a0\u3000\u2003\u0085\u200b\x1c",
        "٣४๑²½Ⅻ①",
    ]
    cases = []
    for k in range(count):
        length = rng.choice([1, 2, 3, 5, 8, 13, 21, 34, 55, 89])
        if k % 5 == 4:
            # Any assigned code point, from anywhere in Unicode.
            chars = []
            while len(chars) < length:
                c = chr(rng.randrange(0x110000))
                if assigned(c):
                    chars.append(c)
            text = "".join(chars)
        else:
            weights = [rng.random() for _ in pools]
            text = "".join(rng.choice(rng.choices(pools, weights)[0]) for _ in range(length))
        cases.append(("random", text))
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/gpt2", help="the folder of vocab.json and merges.txt")
    parser.add_argument("-o", "--output", default="-")
    parser.add_argument("--random", type=int, default=400, help="how many random texts")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    vocab_path = f"{args.data}/vocab.json"
    merges_path = f"{args.data}/merges.txt"
    with open(vocab_path, encoding="utf-8") as f:
        encoder = json.load(f)
    with open(merges_path, encoding="utf-8") as f:
        bpe_data = f.read()
    bpe_merges = [tuple(line.split()) for line in bpe_data.split("\n")[1:-1]]
    reference = Encoder(encoder, bpe_merges)

    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import BPE

    hf = Tokenizer(BPE.from_file(vocab_path, merges_path))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)

    cases = FIXED + random_cases(random.Random(args.seed), args.random)
    lines = []
    disagreements = 0
    for category, text in cases:
        ids = reference.encode(text)
        hf_ids = hf.encode(text).ids
        if ids != hf_ids:
            disagreements += 1
            print(f"disagreement on {text!r}:\n  encoder.py {ids}\n  tokenizers {hf_ids}", file=sys.stderr)
        lines.append(f"{category}\t{text.encode('utf-8').hex()}\t{' '.join(map(str, ids))}")
    if disagreements:
        print(f"{disagreements} disagreements between encoder.py and tokenizers", file=sys.stderr)
        return 1

    def sha256(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    import tokenizers

    header = [
        "# GPT-2 token ids, from scripts/gpt2-bpe-reference.py: OpenAI's encoder.py algorithm (Megatron-LM's",
        f"# GPT2BPETokenizer) with regex {regex.__version__}, checked against tokenizers {tokenizers.__version__}.",
        f"# vocab.json sha256 {sha256(vocab_path)}",
        f"# merges.txt sha256 {sha256(merges_path)}",
        f"# {len(cases)} cases ({args.random} random, seed {args.seed}): category<TAB>UTF-8 hex<TAB>ids",
    ]
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    out.write("\n".join(header + lines) + "\n")
    if out is not sys.stdout:
        out.close()
        print(f"wrote {len(cases)} cases to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
