#!/usr/bin/python3
"""One training step of a Megatron-style GPT in PyTorch: the peer of build/bin/train-step-bench.

The model is the one that
  megatron-model --num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 128 \
    --max-position-embeddings 128 --micro-batch-size 8 --vocab-size 8192 --attention-dropout 0 --hidden-dropout 0
writes (the defaults below): learned position embeddings, pre-LayerNorm (eps 1e-5) blocks with a fused QKV
projection in Megatron's grouped layout, causal softmax attention, GeLU (tanh), biases everywhere but the output
layer, a final LayerNorm, the output layer tied to the word embeddings, no dropout, fp32. Parameters carry Megatron's
names, initialisation (normal 0.02, output projections 0.02/sqrt(2·layers), biases 0, norms 1) and weight-decay
rule (none on biases and norm weights).

One step is what megatron-run does per iteration: forward + loss (cross-entropy averaged under the loss mask),
backward, the global gradient norm and clipping to --clip-grad (torch.nn.utils.clip_grad_norm_), an AdamW step
(torch.optim.AdamW, two parameter groups) and zero_grad(set_to_none=True). The batch is fixed (random tokens and
labels, all-ones loss mask).

Written the way a careful user of PyTorch 1.13 on the CPU would (no F.scaled_dot_product_attention before 2.0):
QKV split as Megatron splits it, attention as two batched matmuls with a precomputed additive causal mask, the query
scaled before QKᵀ (half the elements of scaling the scores at this shape), the loss from F.cross_entropy, AdamW's
single-tensor implementation (--foreach on: the multi-tensor one, slower on the CPU here). Variants tried and
measured no faster: indexing q, k, v out of a [b, s, heads, 3, d] view (its backward zero-fills), unbind,
masked_fill instead of the additive mask, baddbmm with the mask as its input; ATEN_CPU_CAPABILITY=avx512 (torch
1.13 uses AVX2 kernels here by default) did not speed up cross-entropy or GeLU measurably.

Threads: torch.set_num_threads(T) sets PyTorch's OpenMP pool only. Debian's torch calls the system BLAS
(OpenBLAS, BLAS_INFO=generic) and never tells it the thread count, so OpenBLAS would otherwise use every core for
the GEMMs; the script therefore also sets OPENBLAS_NUM_THREADS=T before importing torch and calls
openblas_set_num_threads(T). Run it with /usr/bin/python3 (Debian's torch).

Prints the parameter count, the first losses, every timed step's milliseconds and a final line
  pytorch threads=T median_ms=... min_ms=... p25_ms=... p75_ms=... steps=N
--plan checks the parameters' names and shapes against a plan; --check-dump DIR checks that the model computes what
the plan computes: with the weights and batch of `megatron-parity-dump PLAN DIR` (test/parity), the loss and every
gradient against ours.
"""

import argparse
import ctypes
import json
import math
import os
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--num-layers", type=int, default=4)
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--num-attention-heads", type=int, default=4)
    p.add_argument("--seq-length", type=int, default=128)
    p.add_argument("--micro-batch-size", type=int, default=8)
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--ffn-hidden-size", type=int, default=0, help="0: 4 x hidden")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--clip-grad", type=float, default=1.0, help="0: no clipping (and no norm)")
    p.add_argument("--foreach", choices=["on", "off"], default="off",
                   help="AdamW's multi-tensor (foreach) implementation; off (single-tensor, 1.13's CPU default) "
                        "measured faster here: 39 against 52 ms per step on one thread")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--steps", type=int, default=30, help="timed steps")
    p.add_argument("--expect-params", type=int, default=0,
                   help="fail unless the model has this many parameters (megatron-opt --mt-report's count)")
    p.add_argument("--plan", default="",
                   help="a plan of the same model (megatron-opt --mt-plan): fail unless its parameters' names and "
                        "shapes are this model's")
    p.add_argument("--check-dump", default="",
                   help="instead of timing: load the weights and batch of a megatron-parity-dump directory of the "
                        "same model, and compare this model's loss and gradients with ours (the dump's)")
    p.add_argument("--profile", action="store_true",
                   help="after timing, profile 10 more steps with torch.profiler: its per-operator table, then the "
                        "time per step grouped as docs/performance.md groups our kernels")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: the GPU peer of build/bin/device-train-step-bench (bench/gpu-train-step.sh)")
    p.add_argument("--bf16", action="store_true",
                   help="bf16 autocast around forward and loss (fp32 master weights, gradients and AdamW), as "
                        "megatron-model --bf16 | megatron-opt --mt-mixed-precision computes")
    p.add_argument("--sdpa", action="store_true",
                   help="attention through F.scaled_dot_product_attention(is_causal=True) (flash attention on a GPU) "
                        "instead of two matmuls and a softmax")
    p.add_argument("--fused-adamw", action="store_true",
                   help="torch.optim.AdamW(fused=True): one kernel for every parameter (CUDA)")
    return p.parse_args()


args = parse_args()
# Before torch loads OpenBLAS: its thread pool is sized from this variable.
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def set_blas_threads(n):
    """openblas_set_num_threads(n) on every OpenBLAS library in the process (Debian: libblas.so.3, the OpenBLAS
    front, and libopenblasp-r0.3.21.so behind it). Returns [(library, core name)]: the kernels OpenBLAS chose
    (OPENBLAS_CORETYPE, or detected)."""
    loaded = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and "blas" in os.path.basename(fields[5]) and ".so" in fields[5]:
                if fields[5] not in loaded:
                    loaded.append(fields[5])
    done = []
    for path in loaded:
        lib = ctypes.CDLL(path)  # already loaded: the same instance
        if hasattr(lib, "openblas_set_num_threads"):
            lib.openblas_set_num_threads(ctypes.c_int(n))
            core = "?"
            if hasattr(lib, "openblas_get_corename"):
                lib.openblas_get_corename.restype = ctypes.c_char_p
                core = lib.openblas_get_corename().decode()
            done.append((os.path.basename(path), core))
    return done


class SelfAttention(nn.Module):
    def __init__(self, hidden, heads, sdpa):
        super().__init__()
        self.heads = heads
        self.sdpa = sdpa
        self.head_dim = hidden // heads
        self.linear_qkv = nn.Linear(hidden, 3 * hidden)
        self.linear_proj = nn.Linear(hidden, hidden)
        self.scale = 1.0 / math.sqrt(self.head_dim)

    def forward(self, x, causal_mask):
        b, s, h = x.shape
        # Megatron's grouped layout (one query group per head here): per head [q | k | v], each head_dim wide;
        # split as Megatron does (its backward is one concatenation, where indexing would zero-fill and copy).
        qkv = self.linear_qkv(x).view(b, s, self.heads, 3 * self.head_dim).transpose(1, 2)  # [b, heads, s, 3d]
        q, k, v = qkv.split(self.head_dim, dim=-1)
        if self.sdpa:
            context = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.linear_proj(context.transpose(1, 2).reshape(b, s, h))
        scores = torch.matmul(q * self.scale, k.transpose(-2, -1)) + causal_mask  # [b, heads, s, s]
        probs = torch.softmax(scores, dim=-1)
        context = torch.matmul(probs, v)  # [b, heads, s, d]
        context = context.transpose(1, 2).reshape(b, s, h)
        return self.linear_proj(context)


class Mlp(nn.Module):
    def __init__(self, hidden, ffn):
        super().__init__()
        self.linear_fc1 = nn.Linear(hidden, ffn)
        self.linear_fc2 = nn.Linear(ffn, hidden)

    def forward(self, x):
        return self.linear_fc2(F.gelu(self.linear_fc1(x), approximate="tanh"))


class Layer(nn.Module):
    def __init__(self, hidden, heads, ffn, layers, sdpa):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(hidden, eps=1e-5)
        self.self_attention = SelfAttention(hidden, heads, sdpa)
        self.pre_mlp_layernorm = nn.LayerNorm(hidden, eps=1e-5)
        self.mlp = Mlp(hidden, ffn)

    def forward(self, x, causal_mask):
        x = x + self.self_attention(self.input_layernorm(x), causal_mask)
        return x + self.mlp(self.pre_mlp_layernorm(x))


class Embedding(nn.Module):
    def __init__(self, vocab, seq, hidden):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(seq, hidden)


class Decoder(nn.Module):
    def __init__(self, hidden, heads, ffn, layers, sdpa):
        super().__init__()
        self.layers = nn.ModuleList([Layer(hidden, heads, ffn, layers, sdpa) for _ in range(layers)])
        self.final_layernorm = nn.LayerNorm(hidden, eps=1e-5)


class Gpt(nn.Module):
    def __init__(self, vocab, seq, hidden, heads, ffn, layers, sdpa=False):
        super().__init__()
        self.embedding = Embedding(vocab, seq, hidden)
        self.decoder = Decoder(hidden, heads, ffn, layers, sdpa)
        # Additive causal mask: -inf where the key comes after the query.
        mask = torch.zeros(seq, seq).masked_fill(torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1), float("-inf"))
        self.register_buffer("causal_mask", mask, persistent=False)
        self.register_buffer("positions", torch.arange(seq), persistent=False)
        scaled = 0.02 / math.sqrt(2.0 * layers)
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p) if "layernorm" in name else nn.init.zeros_(p)
            else:
                std = scaled if ("linear_proj" in name or "linear_fc2" in name) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, tokens, labels, loss_mask):
        x = self.embedding.word_embeddings(tokens) + self.embedding.position_embeddings(self.positions)
        for layer in self.decoder.layers:
            x = layer(x, self.causal_mask)
        x = self.decoder.final_layernorm(x)
        logits = F.linear(x, self.embedding.word_embeddings.weight)  # tied output layer, no bias
        # Cross-entropy in f32 from 16-bit logits, as our mixed precision computes it (autocast does the same).
        losses = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), labels.view(-1), reduction="none")
        mask = loss_mask.view(-1)
        return (losses * mask).sum() / mask.sum()


def make_optimizer(model, foreach):
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if args.fused_adamw:
        return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, fused=True)
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, foreach=foreach)


def main():
    torch.set_num_threads(args.threads)
    blas = set_blas_threads(args.threads)
    torch.manual_seed(args.seed)
    ffn = args.ffn_hidden_size or 4 * args.hidden_size
    model = Gpt(args.vocab_size, args.seq_length, args.hidden_size, args.num_attention_heads, ffn, args.num_layers,
                args.sdpa)
    device = torch.device(args.device)
    model.to(device)
    model.train()
    params = list(model.parameters())
    count = sum(p.numel() for p in params)  # the tied embedding once
    print(f"pytorch {torch.__version__}: {count} parameters in {len(params)} tensors; threads {args.threads} "
          f"(torch {torch.get_num_threads()}, OpenBLAS: "
          f"{', '.join(f'{lib} core {core}' for lib, core in blas) or 'OPENBLAS_NUM_THREADS only'}); "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    if args.expect_params and count != args.expect_params:
        sys.exit(f"train_step_pytorch.py: {count} parameters, but the plan has {args.expect_params}")
    if args.plan:
        with open(args.plan) as f:
            plan = json.load(f)
        theirs = {p["name"]: tuple(plan["buffers"][p["buffer"]]["shape"]) for p in plan["params"]}
        ours = {name: tuple(p.shape) for name, p in model.named_parameters()}
        if theirs != ours:
            diff = sorted(set(theirs.items()) ^ set(ours.items()))
            sys.exit(f"train_step_pytorch.py: the parameters differ from {args.plan}'s: {diff[:6]}")
        print(f"parameters: the same {len(ours)} names and shapes as {args.plan}")

    if args.check_dump:
        check_dump(model, args.check_dump)
        return

    g = torch.Generator().manual_seed(args.seed)
    shape = (args.micro_batch_size, args.seq_length)
    tokens = torch.randint(0, args.vocab_size, shape, generator=g).to(device)
    labels = torch.randint(0, args.vocab_size, shape, generator=g).to(device)
    loss_mask = torch.ones(shape, device=device)
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16)

    def synchronize():
        if args.device == "cuda":
            torch.cuda.synchronize()

    with torch.no_grad(), autocast:
        initial = float(model(tokens, labels, loss_mask))
    print(f"initial loss: {initial:.4f} (ln vocab = {math.log(args.vocab_size):.4f})")

    def step(optimizer):
        with autocast:
            loss = model(tokens, labels, loss_mask)
        loss.backward()
        if args.clip_grad > 0:
            with torch.autograd.profiler.record_function("clip_grad_norm_"):  # a no-op unless profiling
                torch.nn.utils.clip_grad_norm_(params, args.clip_grad)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def timed(optimizer, n):
        times = []
        for _ in range(n):
            synchronize()
            start = time.perf_counter()
            step(optimizer)
            synchronize()
            times.append((time.perf_counter() - start) * 1e3)
        return times

    optimizer = make_optimizer(model, args.foreach == "on")
    first = [float(step(optimizer)) for _ in range(max(args.warmup, 1))]
    print("warm-up losses: " + " ".join(f"{x:.4f}" for x in first))
    times = timed(optimizer, args.steps)
    times_sorted = sorted(times)
    q = statistics.quantiles(times_sorted, n=4) if len(times) >= 2 else [times[0]] * 3
    print("step ms: " + " ".join(f"{t:.1f}" for t in times))
    tokens_per_s = args.micro_batch_size * args.seq_length / (statistics.median(times) / 1e3)
    print(f"pytorch threads={args.threads} median_ms={statistics.median(times):.2f} min_ms={times_sorted[0]:.2f} "
          f"p25_ms={q[0]:.2f} p75_ms={q[2]:.2f} steps={len(times)} tokens_per_s={tokens_per_s:.0f}")

    if args.profile:
        profile_steps(step, optimizer)


def check_dump(model, directory):
    """This model against our train_step on the same weights and batch (test/parity's megatron-parity-dump)."""
    import numpy as np

    with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)

    def tensor(entry, key="file"):
        dtype = {"float32": np.float32, "int32": np.int32}[entry["dtype"]]
        data = np.fromfile(os.path.join(directory, entry[key]), dtype=dtype)
        return torch.from_numpy(data.reshape(entry["shape"]).copy())

    named = dict(model.named_parameters())
    with torch.no_grad():
        for p in manifest["params"]:
            named[p["name"]].copy_(tensor(p))
    inputs = {e["name"]: tensor(e) for e in manifest["inputs"]}
    loss = model(inputs["tokens"].long(), inputs["labels"].long(), inputs["loss_mask"])
    loss.backward()
    loss_error = abs(manifest["loss"] - loss.item()) / abs(loss.item())
    worst = max((float((tensor(p, "grad_file") - named[p["name"]].grad).abs().max() /
                       named[p["name"]].grad.abs().max()), p["name"]) for p in manifest["params"])
    print(f"loss: ours {manifest['loss']:.7f}, this model {loss.item():.7f} (relative difference {loss_error:.1e}); "
          f"largest gradient difference {worst[0]:.1e} of the tensor's scale ({worst[1]})")
    if loss_error > 1e-5 or worst[0] > 1e-4:
        sys.exit("train_step_pytorch.py: this model does not compute what the plan computes")


# torch.profiler's operators, grouped as docs/performance.md groups our kernels. An operator inside the optimizer,
# the clipping or zero_grad counts there whatever it is; the others count by name (self time, so nothing twice).
CATEGORIES = [
    ("linear GEMMs (mm, addmm)", ("aten::mm", "aten::addmm")),
    ("attention GEMMs (bmm)", ("aten::bmm",)),
    ("cross-entropy", ("aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
                       "aten::nll_loss_backward", "aten::nll_loss_nd", "aten::nll_loss")),
    ("attention softmax", ("aten::_softmax", "aten::_softmax_backward_data")),
    ("GeLU", ("aten::gelu", "aten::gelu_backward")),
    ("layer norm", ("aten::native_layer_norm", "aten::native_layer_norm_backward")),
    ("embeddings", ("aten::embedding", "aten::embedding_dense_backward", "aten::index_select",
                    "aten::embedding_backward", "aten::index_add_", "aten::_embedding_bag")),
    ("bias gradients (sum)", ("aten::sum",)),
    ("copies, fills, adds, views", ()),  # everything else: the rest of the aten:: operators
]


def profile_steps(step, optimizer, steps=10):
    from torch.profiler import ProfilerActivity, profile, record_function

    wall = []
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            start = time.perf_counter()
            step(optimizer)
            wall.append((time.perf_counter() - start) * 1e3)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    totals = {}

    def top(event):
        while event.cpu_parent is not None:
            event = event.cpu_parent
        return event.name

    for event in prof.events():
        root = top(event)
        if root.startswith("Optimizer.step"):
            group = "AdamW (optimizer.step)"
        elif root.startswith("Optimizer.zero_grad"):
            group = "zero_grad"
        elif root == "clip_grad_norm_":
            group = "gradient norm and clipping"
        else:
            group = next((name for name, ops in CATEGORIES if event.name in ops), None)
            if group is None:
                group = "copies, fills, adds, views" if event.name.startswith("aten::") else "autograd and other"
        totals[group] = totals.get(group, 0.0) + event.self_cpu_time_total / 1e3 / steps
    step_ms = statistics.mean(wall)
    print(f"per step under the profiler (mean wall {step_ms:.1f} ms; operators' self CPU time, ms):")
    for group, ms in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {group:32s} {ms:8.1f}  {100 * ms / step_ms:5.1f}%")
    print(f"  {'outside operators (Python, autograd engine)':32s} {step_ms - sum(totals.values()):8.1f}")

if __name__ == "__main__":
    main()
