"""Benchmark: the fixed cost of a run, N smoke runs through the runner vs N bare `python -c "import lightning"`.

    python -m benchmarks.fixed_cost [--runs 6] [--model mlp] [--wandb offline] [--fresh]

Both sides are timed end to end, sequentially: the runner side is one `dnnbench run --profile smoke --repeats N`
sweep (its own start-up, the warm server's imports, W&B's start-up, every run and the report included). Ratio =
runner / bare imports; the bar is < 0.5. `--fresh` starts every run in a fresh interpreter (DNNBENCH_WARM=0),
the launcher before the warm server. Per run it also prints the time outside the runs' own work (sweep time minus
the rows' `wall_s`, over N): the fixed cost. Numbers mean something on a quiet machine only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results.io import read_rows


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def dnnbench() -> list[str]:
    script = Path(sys.executable).parent / "dnnbench"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bench"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--wandb", default="offline", choices=("offline", "disabled"))
    parser.add_argument("--fresh", action="store_true", help="no warm server: a fresh interpreter per run")
    args = parser.parse_args(argv)
    env = os.environ | ({"DNNBENCH_WARM": "0"} if args.fresh else {})

    bare = sum(timed([sys.executable, "-c", "import lightning"], env) for _ in range(args.runs))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep"
        sweep = timed(dnnbench() + ["run", "--models", args.model, "--profile", "smoke", "--repeats", str(args.runs),
                                    "--wandb", args.wandb, "--no-progress", "--out", str(out)], env)
        rows = read_rows(out / "results.csv")
    inside = sum(float(r["wall_s"] or 0) for r in rows)
    print(f"{args.runs} x `python -c 'import lightning'`: {bare:.1f} s ({bare / args.runs:.2f} s each)")
    print(f"{args.runs} smoke runs of {args.model} ({'fresh interpreters' if args.fresh else 'warm server'}, "
          f"W&B {args.wandb}): {sweep:.1f} s; statuses {sorted({r['status'] for r in rows})}")
    print(f"  inside the runs (wall_s): {inside:.1f} s; outside, per run: {(sweep - inside) / args.runs:.2f} s")
    print(f"ratio runner / bare imports: {sweep / bare:.2f} (bar < 0.5)")


if __name__ == "__main__":
    main()
