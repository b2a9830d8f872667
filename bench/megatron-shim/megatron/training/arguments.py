# Shim for bench/preprocess-vs-megatron.sh (our code, not Megatron-LM's): the tokenizer arguments that
# tools/preprocess_data.py takes from megatron.training.arguments, only those GPT2BPETokenizer needs.
def _add_tokenizer_args(parser):
    group = parser.add_argument_group(title='tokenizer')
    group.add_argument('--tokenizer-type', type=str, required=True)
    group.add_argument('--vocab-file', type=str, default=None)
    group.add_argument('--merge-file', type=str, default=None)
    return parser
