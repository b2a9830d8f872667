# Shim for bench/preprocess-vs-megatron.sh (our code): the names indexed_dataset.py imports; local paths only.
class S3Config:
    pass


class ObjectStorageConfig:
    pass


def _unsupported(*args, **kwargs):
    raise NotImplementedError('object storage is not available in this benchmark shim')


cache_index_file = dataset_exists = get_index_cache_path = get_object_storage_access = _unsupported
parse_s3_path = _unsupported


def is_object_storage_path(path):
    return False
