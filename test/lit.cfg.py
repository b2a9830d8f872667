# lit configuration for the Megatron compiler's IR and tool tests.
import os

import lit.formats

config.name = "megatron"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".mlir", ".test"]
# Inputs/ and the fuzzer's corpus hold IR that tests read, not tests.
config.excludes = ["Inputs", "corpus", "crashes-found", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "unit"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.megatron_obj_root, "test")

# Our tools first, then LLVM's FileCheck, not, count, split-file.
config.environment["PATH"] = os.pathsep.join(
    [config.megatron_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", os.environ["PATH"])]
)
config.substitutions.append(("%shared_data", config.shared_data_dir))
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%megatron_obj_root", config.megatron_obj_root))
# Tests that launch processes with Open MPI's mpirun say `REQUIRES: mpi`: this build has the MPI communicator and
# mpirun is on PATH. As root Open MPI refuses to start without these two variables.
import shutil

if config.have_mpi in ("ON", "TRUE", "1") and shutil.which("mpirun"):
    config.available_features.add("mpi")
    config.environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    config.environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
# Tests that read ../shared/data (the GPT-2 vocabulary) say `REQUIRES: shared-data`; elsewhere they are skipped.
if os.path.isfile(os.path.join(config.shared_data_dir, "gpt2", "vocab.json")):
    config.available_features.add("shared-data")
