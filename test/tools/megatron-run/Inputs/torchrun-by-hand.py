"""Starts a command as one process per rank the way torchrun does, without mpirun: each process gets RANK,
WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and MASTER_PORT (a free port) and nothing else of
a launcher. Waits for all of them (killing them all if they outlive --limit: the test then fails rather than
hangs), prints each rank's output under a "=== rank R: exit status S" header, and exits 0 if every rank did, else
1. Used by test/tools/megatron-run/torchrun*.test. Plain python3.

  torchrun-by-hand.py --nproc 4 [--ranks 0,1,2] [--port-in-use | --agent-store] [--kill RANK [--kill-after TEXT]]
                      -- COMMAND ARGS...
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    """A free port P whose P+1 is free too (for --agent-store)."""
    for _ in range(100):
        with socket.socket() as s, socket.socket() as t:
            s.bind(("", 0))
            port = s.getsockname()[1]
            try:
                t.bind(("", port + 1))
            except OSError:
                continue
            return port
    sys.exit("torchrun-by-hand: no free pair of ports")


def run(args, port, tmp):
    holder = None
    if args.port_in_use or args.agent_store:
        holder = socket.socket()
        holder.bind(("", port))
        holder.listen(16)
    ranks = [int(r) for r in args.ranks.split(",")] if args.ranks else list(range(args.nproc))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_COMM_WORLD", "PMIX_", "SLURM_")) and k not in ("RANK", "WORLD_SIZE")}
    # Open MPI keeps its session files in TMPDIR: a private one, so that parallel tests do not race on it.
    env["TMPDIR"] = tmp
    if args.agent_store:
        env["TORCHELASTIC_USE_AGENT_STORE"] = "True"
    procs, outputs = {}, {}
    for r in ranks:
        e = dict(env, RANK=str(r), WORLD_SIZE=str(args.nproc), LOCAL_RANK=str(r), LOCAL_WORLD_SIZE=str(args.nproc),
                 MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        outputs[r] = open(os.path.join(tmp, f"rank{r}.out"), "w+")
        procs[r] = subprocess.Popen(args.command, env=e, stdout=outputs[r], stderr=subprocess.STDOUT)
    start = time.monotonic()
    killed = False
    while any(p.poll() is None for p in procs.values()):
        if args.kill is not None and not killed and procs[args.kill].poll() is None:
            with open(outputs[ranks[0]].name) as f:
                if args.kill_after in f.read():
                    procs[args.kill].kill()
                    killed = True
                    print(f"torchrun-by-hand: killed rank {args.kill} (SIGKILL)", flush=True)
        if time.monotonic() - start > args.limit:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
            print(f"torchrun-by-hand: ranks still running after {args.limit} s, killed them", flush=True)
            break
        time.sleep(0.05)
    for p in procs.values():
        p.wait()
    if holder:
        holder.close()
    texts = {}
    for r in ranks:
        outputs[r].seek(0)
        texts[r] = outputs[r].read()
        outputs[r].close()
    return ranks, procs, texts, time.monotonic() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nproc", type=int, required=True, help="WORLD_SIZE")
    parser.add_argument("--ranks", help="the ranks to start (comma-separated); default all")
    parser.add_argument("--port-in-use", action="store_true", help="hold MASTER_PORT (listening) while they run")
    parser.add_argument("--agent-store", action="store_true",
                        help="like torchrun's agent: hold MASTER_PORT and set TORCHELASTIC_USE_AGENT_STORE=True")
    parser.add_argument("--kill", type=int, help="SIGKILL this rank once the first rank's output holds --kill-after")
    parser.add_argument("--kill-after", default="iteration")
    parser.add_argument("--limit", type=float, default=240, help="seconds before every rank is killed")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    for attempt in range(3):
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="megatron-torchrun.") as tmp:
            ranks, procs, texts, elapsed = run(args, port, tmp)
        # Another test may have taken the free port between our look and rank 0's bind: try another.
        if args.port_in_use or not any("is in use on this host" in t for t in texts.values()):
            break
    for r in ranks:
        print(f"=== rank {r}: exit status {procs[r].returncode}")
        sys.stdout.write(texts[r])
    print(f"=== {len(ranks)} rank(s) of {args.nproc} ended after {elapsed:.1f} s")
    sys.exit(0 if all(p.returncode == 0 for p in procs.values()) else 1)


main()
