//===- KernelEmitter.cpp - Assembling one generated CUDA kernel -------------===//

#include "KernelEmitter.h"

#include "DeviceLibrary.h"
#include "megatron/Support/Fnv.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace megatron::codegen {

const char *cTypeOf(plan::DType type) {
  switch (type) {
  case plan::DType::F32:
    return "float";
  case plan::DType::F64:
    return "double";
  case plan::DType::BF16:
    return "__nv_bfloat16";
  case plan::DType::F16:
    return "__half";
  case plan::DType::I32:
    return "int";
  case plan::DType::I64:
    return "long long";
  }
  return "void";
}

} // namespace megatron::codegen

namespace megatron::codegen::detail {


std::string literal(double value) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", value);
  std::string s = text;
  // A whole number would read as an integer literal; the device functions take doubles, but say so.
  if (s.find_first_of(".en") == std::string::npos)
    s += ".0";
  return s;
}

std::string deviceCall(const std::string &function, const std::vector<std::string> &templateArgs,
                       const std::vector<std::string> &args) {
  std::string text = "mt::" + function + "<";
  for (size_t i = 0; i < templateArgs.size(); ++i)
    text += (i ? ", " : "") + templateArgs[i];
  text += ">(";
  for (size_t i = 0; i < args.size(); ++i)
    text += (i ? ", " : "") + args[i];
  return text + ")";
}

LaunchConfig gridStride(int64_t n) {
  LaunchConfig c;
  c.block[0] = kThreads;
  c.grid[0] = std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kMaxBlocks);
  return c;
}

LaunchConfig perRow(int64_t rows, int block) {
  LaunchConfig c;
  c.block[0] = block;
  c.grid[0] = std::max<int64_t>(rows, 1);
  return c;
}

LaunchConfig perColumn(int64_t columns) {
  LaunchConfig c;
  c.block[0] = kThreads;
  c.grid[0] = std::max<int64_t>((columns + kThreads - 1) / kThreads, 1);
  return c;
}

LaunchConfig perColumnTile(int64_t columns) {
  LaunchConfig c;
  c.block[0] = 32 * 32; // Common.cuh's kColumnTile × kRowLanes
  c.grid[0] = std::max<int64_t>((columns + 31) / 32, 1);
  return c;
}

int rowBlock(int64_t width, int most) {
  int block = 32;
  while (block < most && block * 4 < width)
    block *= 2;
  return block;
}

KernelEmitter::KernelEmitter(const plan::Plan &plan, const plan::Step &step, std::string role,
                             std::vector<std::string> files)
    : plan(plan), step(step), role(std::move(role)), files(std::move(files)) {}

const plan::Buffer &KernelEmitter::inBuffer(size_t i) const { return plan.buffers[step.inputs.at(i)]; }
const plan::Buffer &KernelEmitter::outBuffer(size_t i) const { return plan.buffers[step.outputs.at(i)]; }

void KernelEmitter::declare(ArgSource source, int index, std::string name, std::string cType) {
  args.push_back(KernelArg{source, index, std::move(name), std::move(cType)});
}

std::string KernelEmitter::in(size_t i) {
  std::string name = "in" + std::to_string(i);
  declare(ArgSource::Input, int(i), name, std::string("const ") + inType(i) + " *");
  return name;
}

std::string KernelEmitter::out(size_t i) {
  std::string name = "out" + std::to_string(i);
  declare(ArgSource::Output, int(i), name, outType(i) + " *");
  return name;
}

std::string KernelEmitter::runtime(const std::string &name, const std::string &cType) {
  declare(ArgSource::Runtime, -1, name, cType);
  return name;
}

std::string KernelEmitter::attribute(const std::string &name, const std::string &cType) {
  declare(ArgSource::Attribute, -1, name, cType);
  return name;
}

double KernelEmitter::attrDouble(const char *name, double fallback) const {
  auto it = step.attrs.find(name);
  if (it == step.attrs.end())
    return fallback;
  if (const double *d = std::get_if<double>(&it->second))
    return *d;
  if (const int64_t *i = std::get_if<int64_t>(&it->second))
    return double(*i);
  return fallback;
}

double KernelEmitter::requiredDouble(const char *name) {
  if (!step.attrs.count(name))
    missing = name;
  return attrDouble(name, 0.0);
}

int64_t KernelEmitter::requiredInt(const char *name) {
  auto it = step.attrs.find(name);
  const int64_t *value = it == step.attrs.end() ? nullptr : std::get_if<int64_t>(&it->second);
  if (!value)
    missing = name;
  return value ? *value : 0;
}

std::string KernelEmitter::attrString(const char *name, const std::string &fallback) const {
  auto it = step.attrs.find(name);
  const std::string *value = it == step.attrs.end() ? nullptr : std::get_if<std::string>(&it->second);
  return value ? *value : fallback;
}

bool KernelEmitter::flag(const char *name) const {
  auto it = step.attrs.find(name);
  const bool *value = it == step.attrs.end() ? nullptr : std::get_if<bool>(&it->second);
  return value && *value;
}

namespace {

// The storage type named in the kernel's name: the first floating-point operand's.
std::string nameType(const std::vector<KernelArg> &args) {
  static const std::pair<const char *, const char *> kShort[] = {
      {"__nv_bfloat16", "bf16"}, {"__half", "f16"}, {"double", "f64"}, {"float", "f32"}};
  for (const KernelArg &arg : args)
    for (const auto &[type, name] : kShort)
      if (arg.cType.find(type) != std::string::npos)
        return name;
  return "any";
}

} // namespace

CudaKernel KernelEmitter::finish(std::string &error) const {
  if (!missing.empty()) {
    error = "the step lacks its '" + missing + "' attribute";
    return CudaKernel();
  }
  CudaKernel kernel;
  kernel.op = step.op;
  kernel.role = role;
  kernel.launch = launch;
  kernel.args = args;

  // The name is a hash of everything else in the source, so it is stable and equal sources share it.
  const std::string placeholder = "MT_KERNEL_NAME";
  std::string source = "// Generated by megatron's CUDA code generator (lib/CodeGen) for plan op '" + step.op + "'" +
                       (role.empty() ? "" : " (" + role + ")") + ". Do not edit.\n";
  // Some kernels take a dimension from their grid (one block per token, per row): the launch is part of what a
  // kernel is, so two steps whose sources agree but whose grids differ (T5's encoder and decoder embeddings) must
  // not share one kernel and its launch.
  source += "// launch: grid " + std::to_string(launch.grid[0]) + " x " + std::to_string(launch.grid[1]) + " x " +
            std::to_string(launch.grid[2]) + ", block " + std::to_string(launch.block[0]) + " x " +
            std::to_string(launch.block[1]) + " x " + std::to_string(launch.block[2]) + ", " +
            std::to_string(launch.sharedBytes) + " bytes of dynamic shared memory\n";
  source += deviceLibraryFile("Common.cuh");
  for (const std::string &file : files)
    source += deviceLibraryFile(file);
  if (!globalText.empty())
    source += "\n" + globalText + "\n";
  source += "\nextern \"C\" __global__ void __launch_bounds__(" + std::to_string(launch.block[0] * launch.block[1] *
                                                                                 launch.block[2]) +
            ") " + placeholder + "(";
  for (size_t i = 0; i < args.size(); ++i)
    source += (i ? ", " : "") + args[i].cType + (args[i].cType.back() == '*' ? "" : " ") + args[i].name;
  source += ") {\n  " + bodyText + ";\n}\n";

  char hash[20];
  std::snprintf(hash, sizeof hash, "%08" PRIx32, uint32_t(fnv1a(source) >> 32));
  kernel.name = "mt_" + step.op + (role.empty() ? "" : "_" + role) + "_" + nameType(args) + "_" + hash;
  source.replace(source.find(placeholder), placeholder.size(), kernel.name);
  kernel.source = std::move(source);
  return kernel;
}

} // namespace megatron::codegen::detail
