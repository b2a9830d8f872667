//===- megatron-run.cpp - Runs a compiled plan -----------------------------===//
//
// Training flags use Megatron-LM's names and defaults; everything else is in runtime/train. A plan compiled for
// tensor parallelism carries its layout, and its ranks run as threads of this process (docs/megatron-run.md).
// --device cuda runs the plan's ranks on GPUs through the CUDA backend: ranks as threads share one GPU, a stream
// each; ranks as processes take their local rank's GPU and NCCL (docs/cuda.md, "Training on the device").
//
//===----------------------------------------------------------------------===//

#include "runtime/comm/Communicator.h"
#include "runtime/cuda/CudaBackend.h"
#include "runtime/cuda/NcclCommunicator.h"
#include "runtime/train/Trainer.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;
using megatron::train::TrainOptions;

namespace {
/// Megatron's --data-path takes its values after one flag, separated by spaces ("--data-path 0.3 a 0.7 b"): those
/// values are gathered into one comma-separated occurrence for LLVM's parser. Prefixes with commas are refused.
std::vector<std::string> gatherDataPath(int argc, char **argv) {
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg != "--data-path" && arg != "-data-path") {
      args.push_back(arg);
      continue;
    }
    std::string values;
    while (i + 1 < argc && std::string(argv[i + 1]).rfind("-", 0) != 0)
      values += (values.empty() ? "" : ",") + std::string(argv[++i]);
    args.push_back("--data-path=" + values);
  }
  return args;
}

/// --device cuda's backend on GPU `device`: the process's local rank under a launcher, as Megatron's
/// torch.cuda.set_device(local_rank); 0 for ranks as threads, each of which gets its own backend (stream) on it.
std::unique_ptr<megatron::device::DeviceBackend> makeCudaBackend(int device, std::string &error) {
  megatron::cuda::CudaBackendOptions options;
  options.device = device;
  // Without a GPU (or a build without CUDA) the error says why: "no CUDA device: ...".
  return megatron::cuda::createCudaBackend(options, error);
}

/// Ranks as processes on GPUs: NCCL over the launcher's host world, every operation bounded by `timeout`
/// (--distributed-timeout-minutes). Untested: no machine with several GPUs has run it (docs/cuda.md, "NCCL").
std::unique_ptr<megatron::comm::Communicator> connectNccl(megatron::comm::Communicator &hostWorld,
                                                          megatron::device::DeviceBackend &backend,
                                                          std::chrono::milliseconds timeout, std::string &error) {
  auto *cuda = dynamic_cast<megatron::cuda::CudaBackend *>(&backend);
  if (!cuda) {
    error = "NCCL needs a CUDA backend, not " + backend.describe();
    return nullptr;
  }
  megatron::cuda::NcclWorldOptions options;
  options.timeout = timeout;
  return megatron::cuda::createNcclWorld(hostWorld, *cuda, error, options);
}
} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  std::vector<std::string> gathered = gatherDataPath(argc, argv);
  std::vector<char *> arguments;
  for (std::string &arg : gathered)
    arguments.push_back(arg.data());
  TrainOptions defaults;
  cl::OptionCategory training("Training (Megatron-LM's flag names)");
  cl::OptionCategory generation("Generation");
  cl::OptionCategory data("Data (Megatron-LM's flag names)");
  cl::OptionCategory precision("Mixed precision (fp16 and bf16 plans, docs/precision.md)");
  cl::opt<std::string> plan("plan", cl::desc("The compiled plan to run"), cl::value_desc("file"), cl::cat(training));
  cl::opt<int64_t> trainIters("train-iters", cl::desc("Iterations to train"), cl::cat(training));
  cl::opt<double> lr("lr", cl::desc("Peak learning rate"), cl::init(defaults.schedule.lr), cl::cat(training));
  cl::opt<double> minLr("min-lr", cl::desc("Learning rate at the end of the decay"), cl::init(0.0),
                        cl::cat(training));
  cl::opt<int64_t> warmup("lr-warmup-iters", cl::desc("Iterations of linear warmup"), cl::init(0), cl::cat(training));
  cl::opt<std::string> decayStyle("lr-decay-style", cl::desc("constant, linear or cosine"), cl::init("linear"),
                                  cl::cat(training));
  cl::opt<int64_t> decayIters("lr-decay-iters", cl::desc("Iterations of the decay (default --train-iters)"),
                              cl::cat(training));
  cl::opt<double> beta1("adam-beta1", cl::init(defaults.adamBeta1), cl::cat(training));
  cl::opt<double> beta2("adam-beta2", cl::init(defaults.adamBeta2), cl::cat(training));
  cl::opt<double> eps("adam-eps", cl::init(defaults.adamEps), cl::cat(training));
  cl::opt<double> weightDecay("weight-decay", cl::desc("AdamW's decoupled weight decay (not on biases and norms)"),
                              cl::init(defaults.weightDecay), cl::cat(training));
  cl::opt<double> clipGrad("clip-grad", cl::desc("Clip gradients to this global L2 norm (0: off)"),
                           cl::init(defaults.clipGrad), cl::cat(training));
  cl::opt<int64_t> logInterval("log-interval", cl::init(defaults.logInterval), cl::cat(training));
  cl::opt<int64_t> evalInterval("eval-interval", cl::init(defaults.evalInterval), cl::cat(training));
  cl::opt<int64_t> evalIters("eval-iters", cl::desc("Iterations (global batches) per evaluation"),
                             cl::init(defaults.evalIters), cl::cat(training));
  cl::opt<uint64_t> seed("seed", cl::init(defaults.seed), cl::cat(training));
  cl::opt<std::string> save("save", cl::desc("Directory to save checkpoints to"), cl::cat(training));
  cl::opt<std::string> load("load", cl::desc("Directory to resume from"), cl::cat(training));
  cl::opt<int64_t> saveInterval("save-interval", cl::desc("Save every N iterations (and at the end)"), cl::init(0),
                                cl::cat(training));
  cl::opt<int64_t> exitInterval("exit-interval", cl::desc("Stop after an iteration divisible by N (saving)"),
                                cl::init(0), cl::cat(training));
  cl::opt<int> threads("cpu-threads",
                       cl::desc("CPU threads in total, shared by a tensor-parallel plan's ranks (default: every core)"),
                       cl::init(0), cl::cat(training));
  cl::opt<std::string> device("device",
                             cl::desc("cpu (default), cuda (the GPU of this process's local rank; ranks as threads "
                                      "share it, a stream each), or auto (cuda where it can run, else the CPU)"),
                             cl::init("cpu"), cl::cat(training));
  cl::opt<double> distributedTimeout(
      "distributed-timeout-minutes",
      cl::desc("How long a rank waits in a collective for the others before the run stops with an error naming "
               "the ranks that never arrived (ranks as threads), or naming the collective (NCCL); default 10, as "
               "Megatron"),
      cl::init(10.0), cl::cat(training));
  cl::opt<std::string> lossCurve("loss-curve", cl::desc("Write the loss curve to this SVG file"),
                                 cl::value_desc("file.svg"), cl::cat(training));
  cl::opt<std::string> lossLog("loss-log", cl::desc("Write every iteration's loss, lr and grad norm to this CSV"),
                               cl::value_desc("file.csv"), cl::cat(training));
  cl::opt<bool> noProgress("no-progress", cl::desc("No live progress line, even on a terminal"), cl::cat(training));
  cl::opt<int> generate("generate", cl::desc("Print this many samples from the model at the end"), cl::init(0),
                        cl::cat(generation));
  cl::opt<int> generateTokens("generate-tokens", cl::desc("Tokens per sample (default: the sequence length)"),
                              cl::init(0), cl::cat(generation));
  cl::opt<bool> greedy("greedy", cl::desc("Always take the most likely token"), cl::cat(generation));
  cl::opt<double> temperature("temperature", cl::init(1.0), cl::cat(generation));
  cl::opt<int> topK("top-k", cl::desc("Sample among the k most likely tokens (0: all)"), cl::init(0),
                    cl::cat(generation));
  cl::opt<double> topP("top-p", cl::desc("Sample from the smallest set of tokens with this probability"),
                       cl::init(1.0), cl::cat(generation));
  cl::HideUnrelatedOptions({&training, &generation, &precision});
  cl::list<std::string> dataPath("data-path",
                                 cl::desc("Megatron's preprocessed data: a .bin/.idx prefix, or weight prefix pairs "
                                          "to blend (default: the built-in corpus)"),
                                 cl::CommaSeparated, cl::cat(data));
  cl::opt<std::string> split("split", cl::desc("Train, validation and test weights of the documents"),
                             cl::init(defaults.split), cl::cat(data));
  cl::opt<std::string> vocabFile("vocab-file", cl::desc("GPT-2's vocab.json, to decode generated text"),
                                 cl::cat(data));
  cl::opt<std::string> mergeFile("merge-file", cl::desc("GPT-2's merges.txt, to decode generated text"),
                                 cl::cat(data));
  cl::opt<std::string> dataCachePath("data-cache-path",
                                     cl::desc("Where to cache the sample indices (default: beside each dataset, "
                                              "in cache/GPTDataset_indices; none: nowhere)"),
                                     cl::cat(data));
  cl::opt<double> lossScale("loss-scale", cl::desc("A constant loss scale (default for fp16: dynamic)"),
                            cl::cat(precision));
  cl::opt<double> initialLossScale("initial-loss-scale", cl::desc("fp16's first dynamic loss scale"),
                                   cl::init(defaults.lossScale.initial), cl::cat(precision));
  cl::opt<double> minLossScale("min-loss-scale", cl::desc("The smallest dynamic loss scale"),
                               cl::init(defaults.lossScale.minimum), cl::cat(precision));
  cl::opt<int64_t> lossScaleWindow("loss-scale-window", cl::desc("Clean steps before the loss scale doubles"),
                                   cl::init(defaults.lossScale.window), cl::cat(precision));
  cl::opt<int64_t> hysteresis("hysteresis", cl::desc("Overflowing steps before the loss scale halves"),
                              cl::init(defaults.lossScale.hysteresis), cl::cat(precision));
  cl::opt<double> lossFloor("loss-floor",
                            cl::desc("A known lower bound on the loss of the --data-path data, in nats per token, "
                                     "printed and drawn beside the loss (e.g. megatron-corpus --vocab-file)"),
                            cl::init(-1.0), cl::cat(data));
  cl::opt<std::string> tokenizerType("tokenizer-type", cl::desc("GPT2BPETokenizer (the only one)"),
                                     cl::init("GPT2BPETokenizer"), cl::cat(data));
  cl::ParseCommandLineOptions(static_cast<int>(arguments.size()), arguments.data(),
                              "megatron-run: trains a compiled plan on the CPU or a GPU\n\n"
                              "  megatron-run --plan gpt.plan --train-iters 200 --lr 3e-3 --loss-curve loss.svg "
                              "--generate 3\n");

  TrainOptions o;
  o.plan = plan;
  o.trainIters = trainIters;
  o.schedule.lr = lr;
  o.schedule.minLr = minLr;
  o.schedule.warmupIters = warmup;
  o.schedule.decayIters = decayIters.getNumOccurrences() ? static_cast<int64_t>(decayIters) : trainIters;
  std::vector<std::string> problems;
  if (auto style = megatron::train::parseDecayStyle(decayStyle))
    o.schedule.style = *style;
  else
    problems.push_back("--lr-decay-style: unknown value '" + decayStyle + "'; expected constant, linear or cosine");
  o.adamBeta1 = beta1;
  o.adamBeta2 = beta2;
  o.adamEps = eps;
  o.weightDecay = weightDecay;
  o.clipGrad = clipGrad;
  o.logInterval = logInterval;
  o.evalInterval = evalInterval;
  o.evalIters = evalIters;
  o.seed = seed;
  o.save = save;
  o.load = load;
  o.saveInterval = saveInterval;
  o.exitInterval = exitInterval;
  o.threads = threads;
  o.device = device;
  o.distributedTimeoutMinutes = distributedTimeout;
  o.dataPath.assign(dataPath.begin(), dataPath.end());
  o.split = split;
  o.vocabFile = vocabFile;
  o.mergeFile = mergeFile;
  o.dataCachePath = dataCachePath;
  o.lossScale.anyGiven = lossScale.getNumOccurrences() || initialLossScale.getNumOccurrences() ||
                         minLossScale.getNumOccurrences() || lossScaleWindow.getNumOccurrences() ||
                         hysteresis.getNumOccurrences();
  if (lossScale.getNumOccurrences())
    o.lossScale.constant = lossScale;
  o.lossScale.initial = initialLossScale;
  o.lossScale.minimum = minLossScale;
  o.lossScale.window = lossScaleWindow;
  o.lossScale.hysteresis = hysteresis;
  if (lossFloor.getNumOccurrences()) {
    if (!(lossFloor >= 0 && lossFloor < 1e6))
      problems.push_back("--loss-floor: " + std::to_string(lossFloor) + " is not a loss in nats (a number >= 0)");
    else if (dataPath.empty())
      problems.push_back("--loss-floor is for --data-path data: the built-in corpus knows its own floor");
    o.lossFloor = lossFloor;
  }
  if (tokenizerType != "GPT2BPETokenizer")
    problems.push_back("--tokenizer-type: only GPT2BPETokenizer is supported, got '" + tokenizerType + "'");
  o.lossCurve = lossCurve;
  o.lossLog = lossLog;
  o.progress = noProgress ? 0 : -1;
  o.generate = generate;
  o.generateTokens = generateTokens;
  o.greedy = greedy;
  o.temperature = temperature;
  o.topK = topK;
  o.topP = topP;

  for (const std::string &problem : megatron::train::validate(o))
    problems.push_back(problem);
  if (!problems.empty()) {
    for (const std::string &problem : problems)
      llvm::errs() << "megatron-run: error: " << problem << "\n";
    return 1;
  }
  // A build without NCCL cannot join the GPUs of ranks that are processes; runTraining then refuses such runs.
  megatron::train::DeviceWorldFactory connectDevices;
  if (megatron::cuda::haveNccl()) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.distributedTimeoutMinutes * 60'000.0));
    connectDevices = [timeout](megatron::comm::Communicator &hostWorld, megatron::device::DeviceBackend &backend,
                               std::string &error) { return connectNccl(hostWorld, backend, timeout, error); };
  }
  return megatron::train::runTraining(o, makeCudaBackend, connectDevices);
}
