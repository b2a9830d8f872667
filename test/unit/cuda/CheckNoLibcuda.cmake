# cmake -DREADELF=<readelf> -DDIR=<build/bin> [-DCUDA_BINARY=<name>] -P CheckNoLibcuda.cmake
#
# Fails if any ELF file in DIR has libcuda (the driver) among its NEEDED entries. The environment puts CUDA's stub
# libraries on LIBRARY_PATH, so a stray -lcuda links silently and the binary then cannot start on a machine
# without a driver (exit 127). CUDA_BINARY names a binary that must list libcudart, which shows that the check
# reads the dynamic sections it claims to.
file(GLOB binaries LIST_DIRECTORIES false "${DIR}/*")
set(checked 0)
set(offenders "")
foreach(binary IN LISTS binaries)
  execute_process(COMMAND "${READELF}" -d "${binary}" OUTPUT_VARIABLE dynamic ERROR_QUIET RESULT_VARIABLE status)
  if(NOT status EQUAL 0 OR NOT dynamic MATCHES "NEEDED")
    continue() # not a dynamically linked ELF file
  endif()
  math(EXPR checked "${checked} + 1")
  if(dynamic MATCHES "NEEDED[^\n]*\\[libcuda\\.so")
    list(APPEND offenders "${binary}")
  endif()
  get_filename_component(name "${binary}" NAME)
  if(CUDA_BINARY AND name STREQUAL CUDA_BINARY AND NOT dynamic MATCHES "NEEDED[^\n]*\\[libcudart\\.so")
    message(FATAL_ERROR "${binary} should link the CUDA runtime (libcudart) but its NEEDED entries do not list it")
  endif()
endforeach()
if(checked EQUAL 0)
  message(FATAL_ERROR "no dynamically linked binaries found in ${DIR}")
endif()
if(offenders)
  message(FATAL_ERROR "these binaries link libcuda directly and will not start without an NVIDIA driver; link "
                      "CUDA::cudart (which loads the driver lazily) instead: ${offenders}")
endif()
message(STATUS "${checked} binaries in ${DIR}: none links libcuda")
