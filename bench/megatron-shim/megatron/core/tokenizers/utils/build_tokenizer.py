# Shim for bench/preprocess-vs-megatron.sh (our code, not Megatron-LM's). Current Megatron-LM builds its tokenizers
# through megatron.core.tokenizers, which needs more than this benchmark can provide; this stands in for it with
# the behaviour of Megatron-LM's legacy _GPT2BPETokenizer (megatron/training/tokenizer/tokenizer.py before
# 3257093930): GPT2Tokenizer(vocab, merges, errors='replace', special_tokens=[], max_len=None), tokenize = encode,
# eod = <|endoftext|>. GPT2Tokenizer itself is Megatron-LM's gpt2_tokenization.py, extracted at run time.
from megatron.training.tokenizer.gpt2_tokenization import GPT2Tokenizer


class _GPT2BPETokenizer:
    def __init__(self, vocab_file, merge_file):
        self.tokenizer = GPT2Tokenizer(vocab_file, merge_file, errors='replace',
                                       special_tokens=[], max_len=None)
        self.eod_id = self.tokenizer.encoder['<|endoftext|>']

    @property
    def vocab_size(self):
        return len(self.tokenizer.encoder)

    def tokenize(self, text):
        return self.tokenizer.encode(text)

    @property
    def eod(self):
        return self.eod_id


def build_tokenizer(args):
    if args.tokenizer_type != 'GPT2BPETokenizer':
        raise ValueError('this shim supports only --tokenizer-type GPT2BPETokenizer')
    return _GPT2BPETokenizer(args.vocab_file, args.merge_file)
