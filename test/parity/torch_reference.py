#!/usr/bin/python3
"""PyTorch's loss and gradients for one micro-batch, compared with megatron-parity-dump's.

    /usr/bin/python3 torch_reference.py PLAN DUMP_DIR [PLAN DUMP_DIR...] [--tolerance 1e-5] [--no-float64]
                                        [--no-direct-model] [--quiet]

The issue's bar: "Numerical parity with PyTorch on the same weights and batch: the loss and every gradient to 1e-5
relative, in fp32." PyTorch computes the loss and the gradients itself, by autograd, from the dump's parameters and
batch; nothing of our backward (no *_grad step of the plan, no gradient of the dump) enters the computation.

Two independent torch models are built:

1. The plan's "forward" program, interpreted step by step with torch ops (the steps are mt ops; their semantics
   are docs/reference/mt-dialect.md's). This checks the compiler's autodiff, the plan's train_step and the CPU
   kernels against torch on exactly the graph the compiler was given.
2. For GPT models, a Megatron-core GPT written out by hand from the parameter names (pre-norm residual layers,
   fused QKV in Megatron's grouped layout, tied or untied output layer), with hyper-parameters (heads, groups,
   epsilon, RoPE, GeLU approximation) read from the plan's step attributes. It does not look at how the steps
   are wired, so it also checks megatron-model's graph against Megatron's architecture.

Both run in float32 (the bar) and, unless --no-float64, model 1 also in float64, which shows how much of the
float32 difference is torch's own rounding.

Exit status: 0 when every comparison is within the tolerance, 1 when one is not, 2 on bad input.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


class ParityError(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------------
# Reading the plan and the dump


def load_json(path):
    with open(path) as f:
        return json.load(f)


NUMPY_DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4")}


def read_raw(dump_dir, entry, file_key="file"):
    dtype = NUMPY_DTYPES[entry["dtype"]]
    data = np.fromfile(os.path.join(dump_dir, entry[file_key]), dtype=dtype)
    shape = tuple(entry["shape"])
    if data.size != int(np.prod(shape, dtype=np.int64)):
        raise ParityError("%s: %d elements, expected shape %s" % (entry[file_key], data.size, shape))
    return torch.from_numpy(data.reshape(shape).copy())


# ---------------------------------------------------------------------------------------------------------------
# Model 1: the plan's forward program, interpreted with torch ops


def rope_cos_sin(seq, rotary_dim, base, dtype):
    """cos and sin of the angles pos·base^(−2i/r), i < r/2. The angles are constants (no gradient flows into
    them); they are computed in float64, as our kernel does, so that both sides rotate by the same angles."""
    half = rotary_dim // 2
    inv_freq = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / rotary_dim)
    angles = torch.arange(seq, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(angles).to(dtype), torch.sin(angles).to(dtype)


def rope(x, rotary_dim, base):
    """Non-interleaved RoPE on x [batch, seq, heads, head_dim]: channel i pairs with i + r/2."""
    seq, half = x.shape[1], rotary_dim // 2
    cos, sin = rope_cos_sin(seq, rotary_dim, base, x.dtype)
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    x1, x2, rest = x[..., :half], x[..., half:rotary_dim], x[..., rotary_dim:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], dim=-1)


def attention(q, k, v, mask_type, scale, pad_mask=None, bias=None):
    """softmax(scale·QKᵀ + bias + mask)·V with GQA: q [b, sq, n, d], k and v [b, skv, g, d]; query head h reads
    key/value head h // (n/g). A query that sees no key gives 0 (as our kernel)."""
    b, sq, n, d = q.shape
    skv, g = k.shape[1], k.shape[2]
    if n % g:
        raise ParityError("attention: %d heads are not a multiple of %d groups" % (n, g))
    qh = q.permute(0, 2, 1, 3)                                     # [b, n, sq, d]
    kh = k.permute(0, 2, 1, 3).repeat_interleave(n // g, dim=1)    # [b, n, skv, d]
    vh = v.permute(0, 2, 1, 3).repeat_interleave(n // g, dim=1)
    scores = torch.matmul(qh, kh.transpose(-1, -2)) * scale
    if bias is not None:
        scores = scores + bias[None]
    hidden = torch.zeros(b, 1, sq, skv, dtype=torch.bool)
    if mask_type == "causal":
        if sq != skv:
            raise ParityError("causal attention needs q_seq == kv_seq")
        hidden = hidden | torch.triu(torch.ones(sq, skv, dtype=torch.bool), diagonal=1)[None, None]
    elif mask_type == "padding":
        hidden = hidden | (pad_mask == 0)[:, None, None, :]
    elif mask_type != "bidirectional":
        raise ParityError("attention: unknown mask_type " + mask_type)
    # The dtype's lowest finite value rather than −inf: a row with no visible key then stays finite (and is zeroed
    # below), while exp(lowest − row max) is exactly 0 wherever a key is visible.
    scores = scores.masked_fill(hidden, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1)
    probs = torch.where(hidden.all(dim=-1, keepdim=True), torch.zeros_like(probs), probs)
    return torch.matmul(probs, vh).permute(0, 2, 1, 3)             # [b, sq, n, d]


def t5_relative_position_bucket(relative_position, bidirectional, num_buckets, max_distance):
    """Hugging Face transformers' T5Attention._relative_position_bucket, as written there (float32 logarithm)."""
    relative_buckets = 0
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    relative_position_if_large = max_exact + (
        torch.log(relative_position.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    relative_position_if_large = torch.min(
        relative_position_if_large, torch.full_like(relative_position_if_large, num_buckets - 1))
    relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
    return relative_buckets


def relative_position_bias(table, q_seq, kv_seq, bidirectional, num_buckets, max_distance):
    """T5's bias [heads, q_seq, kv_seq] = table[bucket(k − q), h] from a [num_buckets, heads] table."""
    relative = torch.arange(kv_seq, dtype=torch.long)[None, :] - torch.arange(q_seq, dtype=torch.long)[:, None]
    buckets = t5_relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
    return table[buckets].permute(2, 0, 1)


def split_qkv(x, heads, groups, head_dim):
    """Megatron's grouped layout: per group, its heads/groups query heads, its key head, its value head."""
    b, s = x.shape[0], x.shape[1]
    per = heads // groups
    x = x.reshape(b, s, groups, per + 2, head_dim)
    q = x[:, :, :, :per, :].reshape(b, s, heads, head_dim)
    return q, x[:, :, :, per, :], x[:, :, :, per + 1, :]


def cross_entropy(logits, labels, mask=None):
    """sum(mask·nll)/sum(mask) (0 when the mask is all 0); the plain mean without a mask. Labels are only read
    where the mask is non-zero (BERT's data has −1 elsewhere)."""
    vocab = logits.shape[-1]
    labels = labels.reshape(-1).long()
    flat = logits.reshape(-1, vocab)
    if mask is None:
        return F.cross_entropy(flat, labels, reduction="mean")
    mask = mask.reshape(-1).to(logits.dtype)
    labels = torch.where(mask != 0, labels, torch.zeros_like(labels))
    nll = F.cross_entropy(flat, labels, reduction="none")
    total = mask.sum()
    if total.item() == 0:
        return (nll * 0).sum()
    return (nll * mask).sum() / total


def attr(step, key):
    if key not in step["attrs"]:
        raise ParityError("step %s of %s lacks attribute %s" % (step["op"], step["loc"], key))
    return step["attrs"][key]


class Interpreter:
    """Runs a program's steps on torch tensors. Buffers are named by id; a view (split_heads, merge_heads: no step
    writes it) is the tensor most recently written at the same place of the same arena, reshaped. The interpreter
    also checks the plan's memory layout as it goes: a buffer read after another one overwrote part of it is an
    error."""

    def __init__(self, plan, params, inputs):
        self.plan = plan
        self.buffers = plan["buffers"]
        self.values = {}
        self.values.update(params)
        self.values.update(inputs)
        self.writes = []  # (step index, buffer id) in program order
        self.written_at = {}  # buffer id -> the step that wrote it last

    def _range(self, buffer_id):
        b = self.buffers[buffer_id]
        return b["arena"], b["offset"], b["offset"] + b["bytes"]

    def _overwritten_after(self, buffer_id, since):
        """A buffer written after step `since` that overlaps buffer_id's bytes."""
        arena, lo, hi = self._range(buffer_id)
        for step_index, other in reversed(self.writes):
            if step_index <= since:
                break
            a, olo, ohi = self._range(other)
            if other != buffer_id and a == arena and olo < hi and lo < ohi:
                return other
        return None

    def read(self, buffer_id):
        shape = tuple(self.buffers[buffer_id]["shape"])
        if buffer_id in self.values:
            source = buffer_id
        else:
            # A view: the latest buffer written at the same place.
            arena, lo, hi = self._range(buffer_id)
            source = None
            for _, other in reversed(self.writes):
                a, olo, ohi = self._range(other)
                if a == arena and olo < hi and lo < ohi:
                    if (olo, ohi) != (lo, hi):
                        raise ParityError("buffer %d (a view) overlaps buffer %d only partly" % (buffer_id, other))
                    source = other
                    break
            if source is None:
                raise ParityError("buffer %d is read before anything was written there" % buffer_id)
        written_at = self.written_at.get(source)
        if written_at is not None:
            clobber = self._overwritten_after(source, written_at)
            if clobber is not None:
                raise ParityError("buffer %d is read after buffer %d overwrote it (memory plan)" % (buffer_id, clobber))
        value = self.values[source]
        if value is None:
            raise ParityError("buffer %d (a statistic for the backward) is read by the forward" % buffer_id)
        if tuple(value.shape) != shape:
            value = value.reshape(shape)
        return value

    def write(self, step_index, buffer_id, value):
        if value is not None and tuple(value.shape) != tuple(self.buffers[buffer_id]["shape"]):
            raise ParityError("step %d writes shape %s into buffer %d of shape %s" % (
                step_index, tuple(value.shape), buffer_id, self.buffers[buffer_id]["shape"]))
        self.values[buffer_id] = value
        self.written_at[buffer_id] = step_index
        self.writes.append((step_index, buffer_id))

    def run(self, program_name):
        program = next((p for p in self.plan["programs"] if p["name"] == program_name), None)
        if program is None:
            raise ParityError("the plan has no program " + program_name)
        for index, step in enumerate(program["steps"]):
            outs = self.execute(step)
            if len(outs) != len(step["out"]):
                raise ParityError("step %d (%s): %d outputs, the plan names %d" % (
                    index, step["op"], len(outs), len(step["out"])))
            for buffer_id, value in zip(step["out"], outs):
                self.write(index, buffer_id, value)
        return self.read(program["loss"])

    def execute(self, step):
        op = step["op"]
        ins = [self.read(i) for i in step["in"]]
        if op == "embedding":
            ids, table = ins
            return [table[ids.long()]]
        if op == "add_position_embedding":
            x, table = ins
            return [x + table[: x.shape[1]][None]]
        if op == "layer_norm":
            x, w, b = ins
            y = F.layer_norm(x, (x.shape[-1],), w, b, eps=attr(step, "epsilon"))
            return [y, None, None]  # mean and rstd: saved for the backward, not compared
        if op == "rms_norm":
            x, w = ins
            y = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + attr(step, "epsilon")) * w
            return [y, None]
        if op == "linear":
            return [F.linear(*ins)]
        if op == "split_qkv":
            heads, groups = attr(step, "num_heads"), attr(step, "num_query_groups")
            head_dim = self.buffers[step["out"][0]]["shape"][-1]
            return list(split_qkv(ins[0], heads, groups, head_dim))
        if op == "split_kv":
            groups = attr(step, "num_query_groups")
            x = ins[0]
            head_dim = self.buffers[step["out"][0]]["shape"][-1]
            x = x.reshape(x.shape[0], x.shape[1], groups, 2, head_dim)
            return [x[:, :, :, 0, :], x[:, :, :, 1, :]]
        if op == "rope":
            return [rope(ins[0], attr(step, "rotary_dim"), attr(step, "base"))]
        if op == "attention":
            if attr(step, "dropout") != 0:
                raise ParityError("attention dropout %g: compile with --attention-dropout 0" % attr(step, "dropout"))
            mask_type = attr(step, "mask_type")
            q, k, v = ins[:3]
            rest = ins[3:]
            pad_mask = rest.pop(0) if mask_type == "padding" else None
            bias = rest.pop(0) if rest else None
            heads = attr(step, "num_heads")
            if q.shape[2] != heads or k.shape[2] != attr(step, "num_query_groups"):
                raise ParityError("attention: shapes %s, %s disagree with the attributes" % (q.shape, k.shape))
            return [attention(q, k, v, mask_type, attr(step, "softmax_scale"), pad_mask, bias), None]
        if op == "gelu":
            approximation = attr(step, "approximation")
            if approximation not in ("tanh", "none"):
                raise ParityError("gelu: unknown approximation " + approximation)
            return [F.gelu(ins[0], approximate=approximation)]
        if op == "swiglu":
            x = ins[0]
            half = x.shape[-1] // 2
            return [F.silu(x[..., :half]) * x[..., half:]]
        if op == "add":
            return [ins[0] + ins[1]]
        if op == "dropout":
            if attr(step, "rate") != 0:
                raise ParityError("dropout rate %g: compile with --hidden-dropout 0" % attr(step, "rate"))
            return [ins[0]]
        if op == "pooler":
            x, w, b = ins
            return [torch.tanh(F.linear(x[:, 0], w, b))]
        if op == "cross_entropy":
            return [cross_entropy(*ins), None]
        if op == "relative_position_bias":
            _, q_seq, kv_seq = self.buffers[step["out"][0]]["shape"]
            return [relative_position_bias(ins[0], q_seq, kv_seq, attr(step, "bidirectional"),
                                           attr(step, "num_buckets"), attr(step, "max_distance"))]
        raise ParityError("step op '%s' (%s) is not interpreted here" % (op, step["loc"]))


# ---------------------------------------------------------------------------------------------------------------
# Model 2: a Megatron-core GPT written out by hand


def forward_steps(plan, op):
    program = next(p for p in plan["programs"] if p["name"] == "forward")
    return [s for s in program["steps"] if s["op"] == op]


def megatron_gpt_loss(plan, p, inputs):
    """Megatron-core's GPTModel (pre-norm TransformerLayer, no dropout) on parameters `p` by name."""
    def one_attr(op, key):
        values = {json.dumps(s["attrs"][key]) for s in forward_steps(plan, op)}
        if len(values) != 1:
            raise ParityError("expected one value of %s.%s, found %s" % (op, key, sorted(values)))
        return json.loads(values.pop())

    layers = 0
    while "decoder.layers.%d.self_attention.linear_qkv.weight" % layers in p:
        layers += 1
    rms = "decoder.final_layernorm.bias" not in p
    eps = one_attr("rms_norm" if rms else "layer_norm", "epsilon")
    heads, groups = one_attr("attention", "num_heads"), one_attr("attention", "num_query_groups")
    swiglu = bool(forward_steps(plan, "swiglu"))
    use_rope = bool(forward_steps(plan, "rope"))

    def norm(x, prefix):
        if rms:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * p[prefix + ".weight"]
        return F.layer_norm(x, (x.shape[-1],), p[prefix + ".weight"], p[prefix + ".bias"], eps)

    def linear(x, prefix):
        return F.linear(x, p[prefix + ".weight"], p.get(prefix + ".bias"))

    tokens = inputs["tokens"].long()
    b, s = tokens.shape
    h = p["embedding.word_embeddings.weight"][tokens]
    if "embedding.position_embeddings.weight" in p:
        h = h + p["embedding.position_embeddings.weight"][:s][None]
    for i in range(layers):
        prefix = "decoder.layers.%d." % i
        x = norm(h, prefix + "input_layernorm")
        qkv = linear(x, prefix + "self_attention.linear_qkv")
        head_dim = qkv.shape[-1] // (heads + 2 * groups)
        q, k, v = split_qkv(qkv, heads, groups, head_dim)
        if use_rope:
            rotary_dim, base = one_attr("rope", "rotary_dim"), one_attr("rope", "base")
            q, k = rope(q, rotary_dim, base), rope(k, rotary_dim, base)
        o = attention(q, k, v, "causal", 1.0 / math.sqrt(head_dim)).reshape(b, s, heads * head_dim)
        h = h + linear(o, prefix + "self_attention.linear_proj")
        x = linear(norm(h, prefix + "pre_mlp_layernorm"), prefix + "mlp.linear_fc1")
        if swiglu:
            half = x.shape[-1] // 2
            x = F.silu(x[..., :half]) * x[..., half:]
        else:
            x = F.gelu(x, approximate=one_attr("gelu", "approximation"))
        h = h + linear(x, prefix + "mlp.linear_fc2")
    h = norm(h, "decoder.final_layernorm")
    output = p.get("output_layer.weight", p["embedding.word_embeddings.weight"])
    return cross_entropy(F.linear(h, output), inputs["labels"], inputs.get("loss_mask"))


# ---------------------------------------------------------------------------------------------------------------
# Running and comparing


def gradients(loss_fn, param_values, dtype):
    """Loss and gradients by torch autograd, with the parameters as float leaves of `dtype`."""
    leaves = {name: value.detach().clone().to(dtype).requires_grad_(True) for name, value in param_values.items()}
    loss = loss_fn(leaves)
    loss.backward()
    grads = {name: (leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)).detach()
             for name, leaf in leaves.items()}
    return loss.item(), grads


def relative_error(ours, reference):
    """max|ours − ref| / max|ref| over one tensor, in float64.

    The norm is the tensor's scale, not each element's: a gradient element is a sum of many terms, and where they
    cancel to near zero its relative error is meaningless (any rounding is a large fraction of a tiny value), while
    its absolute error is still governed by the size of the terms, i.e. by the tensor's scale. This is the norm of
    the kernel tests (docs/cpu-kernels.md: "1e-5 of the tensor's scale"). A reference of all zeros (a parameter no
    path reaches) compares absolutely, against the smallest normal float."""
    ours, reference = ours.double(), reference.double()
    scale = max(reference.abs().max().item() if reference.numel() else 0.0, torch.finfo(torch.float32).tiny)
    return (ours - reference).abs().max().item() / scale if reference.numel() else 0.0


def check(plan_path, dump_dir, args):
    """Compares one dump with torch; prints a table; returns True when everything is within the tolerance."""
    plan = load_json(plan_path)
    manifest = load_json(os.path.join(dump_dir, "manifest.json"))
    if manifest.get("format") != "megatron-parity-dump":
        raise ParityError(dump_dir + " is not a megatron-parity-dump directory")
    if manifest.get("plan_fingerprint") != plan.get("fingerprint"):
        raise ParityError("the dump was made from another plan (fingerprint %s, this plan %s)" % (
            manifest.get("plan_fingerprint"), plan.get("fingerprint")))

    params = {e["name"]: read_raw(dump_dir, e) for e in manifest["params"]}
    ours_grads = {e["name"]: read_raw(dump_dir, e, "grad_file") for e in manifest["params"]}
    buffer_of = {e["name"]: e["buffer"] for e in manifest["params"]}
    inputs = {e["name"]: read_raw(dump_dir, e) for e in manifest["inputs"]}
    input_buffer = {e["name"]: e["buffer"] for e in manifest["inputs"]}
    ours_loss = manifest["loss"]

    def interpreted(dtype):
        def loss_fn(leaves):
            by_buffer = {buffer_of[n]: v for n, v in leaves.items()}
            ins = {input_buffer[n]: (v.to(dtype) if v.is_floating_point() else v) for n, v in inputs.items()}
            return Interpreter(plan, by_buffer, ins).run(args.program)
        return loss_fn

    def direct(dtype):
        def loss_fn(leaves):
            ins = {n: (v.to(dtype) if v.is_floating_point() else v) for n, v in inputs.items()}
            return megatron_gpt_loss(plan, leaves, ins)
        return loss_fn

    # The bar: ours against torch in float32, on the interpreted plan (and on the hand-written GPT).
    checked = [("torch fp32", gradients(interpreted(torch.float32), params, torch.float32))]
    family = plan.get("model", {}).get("family")
    if not args.no_direct_model and family == "gpt":
        checked.append(("Megatron GPT fp32", gradients(direct(torch.float32), params, torch.float32)))
    # For scale only: the interpreted model in float64. "torch fp32 vs fp64" is torch's own float32 rounding.
    fp64 = None if args.no_float64 else gradients(interpreted(torch.float64), params, torch.float64)

    names = [e["name"] for e in manifest["params"]]
    tiny = torch.finfo(torch.float32).tiny
    failures = []
    worst = {}

    def check(label, name, error):
        if label not in worst or error > worst[label][0]:
            worst[label] = (error, name)
        if not error <= args.tolerance:  # NaN fails too
            failures.append("%s vs %s: relative error %.3g > %g" % (name, label, error, args.tolerance))

    ref_loss, ref_grads = checked[0][1]
    columns = ["ours vs torch fp32"] + (["ours vs torch fp64", "torch fp32 vs fp64"] if fp64 else [])
    rows = []
    cells = [abs(ours_loss - ref_loss) / max(abs(ref_loss), tiny)]
    if fp64:
        cells += [abs(ours_loss - fp64[0]) / abs(fp64[0]), abs(ref_loss - fp64[0]) / abs(fp64[0])]
    rows.append(("loss", "", abs(ref_loss), cells))
    for name in names:
        cells = [relative_error(ours_grads[name], ref_grads[name])]
        if fp64:
            cells += [relative_error(ours_grads[name], fp64[1][name]), relative_error(ref_grads[name], fp64[1][name])]
        rows.append((name, "x".join(str(d) for d in params[name].shape), ref_grads[name].abs().max().item(), cells))
    for label, (loss, grads) in checked:
        check(label, "loss", abs(ours_loss - loss) / max(abs(loss), tiny))
        for name in names:
            check(label, "grad " + name, relative_error(ours_grads[name], grads[name]))

    print("parity: %s: %d parameters, loss ours %.9g, torch fp32 %.9g%s" % (
        plan_path, len(names), ours_loss, ref_loss, ", torch fp64 %.9g" % fp64[0] if fp64 else ""))
    if not args.quiet:
        width = max(len(r[0]) for r in rows)
        header = "%-*s  %-12s %10s" % (width, "gradient of", "shape", "max|ref|") + "".join(
            "  %18s" % c for c in columns)
        print(header)
        print("-" * len(header))
        for name, shape, scale, cells in rows:
            print("%-*s  %-12s %10.3g" % (width, name, shape, scale) + "".join("  %18.2e" % c for c in cells))
    for label, (error, where) in worst.items():
        print("worst relative error, ours vs %s: %.3g (%s)" % (label, error, where))
    if fp64:
        own = max(r[3][2] for r in rows[1:])
        print("for scale, torch fp32 vs torch fp64: worst gradient %.3g; ours vs torch fp64: worst gradient %.3g" % (
            own, max(r[3][1] for r in rows[1:])))
    if failures:
        print("FAIL: %d comparisons above %g:" % (len(failures), args.tolerance))
        for f in failures:
            print("  " + f)
        return False
    print("PASS: the loss and %d gradients are within %g of PyTorch's" % (len(names), args.tolerance))
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", nargs="+", metavar="PLAN DUMP_DIR", help="plans and their dumps, in pairs")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--program", default="forward",
                        help="the plan's program to interpret; it must end in the scalar loss (default forward)")
    parser.add_argument("--no-float64", action="store_true", help="skip the float64 run of the interpreted model")
    parser.add_argument("--no-direct-model", action="store_true", help="skip the hand-written Megatron GPT")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary, not every parameter")
    args = parser.parse_args()
    if len(args.pairs) % 2:
        parser.error("expected PLAN DUMP_DIR pairs")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    failed = []
    for plan_path, dump_dir in zip(args.pairs[0::2], args.pairs[1::2]):
        if not check(plan_path, dump_dir, args):
            failed.append(plan_path)
        print()
    if failed:
        print("parity FAILED for: " + ", ".join(failed))
        return 1
    return 0

if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ParityError, OSError, KeyError, ValueError) as e:
        print("torch_reference.py: error: %s" % e, file=sys.stderr)
        sys.exit(2)
