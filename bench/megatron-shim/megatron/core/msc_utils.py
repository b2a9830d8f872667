# Shim for bench/preprocess-vs-megatron.sh (our code): no Multi-Storage Client, plain local files.
import builtins


class MultiStorageClientFeature:
    pass


class _LocalFiles:
    open = staticmethod(builtins.open)


maybe_msc = _LocalFiles()
