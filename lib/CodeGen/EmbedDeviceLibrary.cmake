# cmake -DOUTPUT=<file.inc> -DINPUTS=<a.cuh;b.cuh> -P EmbedDeviceLibrary.cmake
# Writes one `{"name", R"...(contents)..."},` entry per input, for DeviceLibrary.cpp's table.
set(text "")
foreach(input IN LISTS INPUTS)
  file(READ "${input}" contents)
  get_filename_component(name "${input}" NAME)
  string(APPEND text "{\"${name}\", R\"mtcuda(${contents})mtcuda\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "${text}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
