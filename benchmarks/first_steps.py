"""Where a training run's first steps go, with cuDNN's autotuner on and off.

    # on the GPU machine (small data generated there)
    python benchmarks/first_steps.py --generate --scenes 6 --views 40
    # anywhere, to check the script: CPU, tiny sizes
    python benchmarks/first_steps.py --smoke

The recipe (`--config`, default configs/segan_recommended.yaml) trains `--stage1` steps of
stage 1 then `--stage2` of stage 2 once per `run.cudnn_benchmark` setting, each a fresh
`segan train` process on the same data and decoded cache (the first run builds it). Per
setting: the first step (the summary's `startup.first_step_s`: CUDA start, the autotuner's
trials for every convolution shape), the rate of stage 1 after its first logged interval,
the first stage-2 interval (D's shapes are new there) and the rate of stage 2 after it. A
session-40 H100 run of the recipe spent 61 s in its first step (`startup` of
logs/train_recommended.log). Prints a table and appends it to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from benchdoc import append_section, machine_name
from train_gpu import generate_data

ROOT = Path(__file__).resolve().parents[1]


def train(args: argparse.Namespace, data: Path, out: Path, cache: Path, setting: str) -> dict:
    """One fresh `segan train` process; its summary and its logged records."""
    over = [f"schedule.stage1_steps={args.stage1}", f"schedule.stage2_steps={args.stage2}",
            f"run.log_every={args.log_every}", "run.grid_every=0",
            f"run.cudnn_benchmark={setting}", *args.overrides]
    cmd = [sys.executable, "-m", "segan.cli", "train", "--config", str(args.config),
           "--data", str(data), "--out", str(out), "--cache-dir", str(cache), "--quiet", *over]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    records = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()
               if line.strip()]
    return {"summary": summary, "records": [r for r in records if "time_s" in r]}


def rate(records: list[dict], stage: int, skip_first: bool) -> tuple[float, float]:
    """Steps/s of a stage's logged intervals (after its first one) and that first interval's s."""
    recs = [r for r in records if r["stage"] == stage]
    before = [r for r in records if r["stage"] < stage]
    if not recs:
        return float("nan"), float("nan")
    t_prev = before[-1]["time_s"] if before else 0.0
    s_prev = before[-1]["step"] if before else 0
    first = recs[0]["time_s"] - t_prev
    if skip_first:
        t_prev, s_prev, recs = recs[0]["time_s"], recs[0]["step"], recs[1:]
    if not recs:
        return float("nan"), first
    return (recs[-1]["step"] - s_prev) / (recs[-1]["time_s"] - t_prev), first


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, help="dataset folder (else --generate)")
    ap.add_argument("--generate", action="store_true", help="generate the data first")
    ap.add_argument("--preset", default="dyce")
    ap.add_argument("--scenes", type=int, default=6)
    ap.add_argument("--views", type=int, default=40)
    ap.add_argument("--workers", type=int, default=16, help="generation workers")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "segan_recommended.yaml")
    ap.add_argument("--stage1", type=int, default=300)
    ap.add_argument("--stage2", type=int, default=300)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--settings", nargs="+", default=["auto", "never"],
                    choices=["auto", "always", "never"])
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny: checks the script")
    ap.add_argument("--no-doc", action="store_true", help="print only")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="more config overrides")
    args = ap.parse_args()
    if args.smoke:
        args.generate, args.scenes, args.views, args.workers = True, 1, 2, 1
        args.stage1, args.stage2, args.log_every = 4, 4, 2
        args.no_doc = True
        args.overrides += ["run.device=cpu", "data.batch_objects=4", "data.objects_per_image=2",
                           "data.num_workers=0", "data.cache_workers=0",
                           "model.backbone_weights=none"]
    with tempfile.TemporaryDirectory(prefix="segan-firststeps-") as tmp:
        tmp = Path(tmp)
        if args.data is None and not args.generate:
            ap.error("--data DIR or --generate")
        data = args.data or generate_data(tmp / "data", args.preset, args.scenes, args.views,
                                          args.workers)
        rows = []
        for setting in args.settings:
            r = train(args, data, tmp / f"run_{setting}", tmp / "cache", setting)
            st = r["summary"].get("startup", {})
            s1, _ = rate(r["records"], 1, skip_first=True)
            s2, first2 = rate(r["records"], 2, skip_first=True)
            rows.append((setting, st.get("data_s", float("nan")),
                         st.get("first_step_s", float("nan")), s1, first2, s2))
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    table = ("| run.cudnn_benchmark | data and cache s | first step s | stage-1 steps/s | "
             "first stage-2 interval s | stage-2 steps/s |\n|---|---|---|---|---|---|\n")
    table += "\n".join(f"| {s} | {d:.1f} | {f:.1f} | {a:.2f} | {i:.1f} | {b:.2f} |"
                       for s, d, f, a, i, b in rows)
    print(table)
    if not args.no_doc:
        notes = (f"{args.config.name}, {args.stage1} + {args.stage2} steps, logged every "
                 f"{args.log_every}; one `segan train` process per setting, the first building "
                 "the decoded cache; rates after each stage's first logged interval.")
        print("appended to", append_section("Training's first steps, cuDNN autotuner on and "
                                            "off", machine_name(device), notes, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
