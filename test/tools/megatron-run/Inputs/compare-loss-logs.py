"""Compares two megatron-run --loss-log CSVs: the rows of the given iterations must be present in both, and their
loss and grad_norm (or the --columns given) agree to a relative tolerance; a column empty in both rows (an
iteration without validation) is skipped. Used to check that a tensor- or data-parallel run trains like the
single-rank run of the same model. Plain python3 (no torch)."""
import argparse
import csv
import sys


def rows(path):
    with open(path) as f:
        return {int(r["iteration"]): r for r in csv.DictReader(f)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("expected")
    parser.add_argument("actual")
    parser.add_argument("--iterations", required=True, help="first-last, inclusive")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--columns", default="loss,grad_norm", help="comma-separated")
    args = parser.parse_args()
    first, last = (int(x) for x in args.iterations.split("-"))
    expected, actual = rows(args.expected), rows(args.actual)
    worst = 0.0
    for it in range(first, last + 1):
        for name in (expected, actual):
            if it not in name:
                sys.exit(f"iteration {it} is missing from one of the logs")
        for column in args.columns.split(","):
            if expected[it][column] == "" and actual[it][column] == "":
                continue
            e, a = float(expected[it][column]), float(actual[it][column])
            error = abs(a - e) / max(abs(e), 1e-30)
            worst = max(worst, error)
            if error > args.tolerance:
                sys.exit(f"iteration {it}: {column} {a!r} differs from {e!r} by {error:.3g} (relative)")
    print(f"iterations {first}-{last}: {' and '.join(args.columns.split(','))} agree, largest relative difference "
          f"{worst:.3g}")


main()
