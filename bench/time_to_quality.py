"""Quality against training time, from the snapshots of one training run.

    python -m unit_nodes train ... --export-every 300 --out RUN
    python bench/time_to_quality.py RUN/snapshots --task "mnist->usps" \
        --protocol translated-target --json bench/results/ttq_target.json
    python bench/time_to_quality.py RUN/snapshots --task emoji --json bench/results/ttq_emoji_new.json

``--task emoji`` scores each snapshot with ``eval emoji`` (FID, KID, L1, SSIM in both
directions on the full test split, with the identity baseline) and also records
``train_cpu_seconds``, the training process's CPU time (comparable across machine loads,
unlike wall time, when runs share the cores).

Each snapshot (``RUN/snapshots/step_NNNNNNN``) carries ``trained_steps``, ``run_seconds`` and
``run_cpu_seconds`` (the run's training time, wall and CPU, summed over resumes: the checkpoint
records it; snapshots written by versions before 2026-12-02 counted from the last resume only) in its metadata; every snapshot is scored
with ``evaluate.evaluate_digit_task`` on the full target test set and one row is printed per
snapshot. ``--steps 600,1800`` restricts the run to some snapshots (the translated-source
protocol trains a classifier per snapshot: minutes each on a CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unit_nodes.tools import evaluate  # noqa: E402
from unit_nodes.core.weights import atomic_write_text, read_safetensors  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("snapshots", type=Path, help="the run's snapshots/ folder")
    p.add_argument("--task", required=True, choices=sorted(evaluate.DIGIT_TASKS) + ["emoji"])
    p.add_argument("--protocol", default="translated-source", choices=evaluate.DIGIT_PROTOCOLS)
    p.add_argument("--steps", default=None, help="comma-separated snapshot steps to score (default: all)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    folders = sorted(f for f in args.snapshots.glob("step_*") if (f / "model.safetensors").is_file())
    if args.steps:
        wanted = {int(s) for s in args.steps.split(",")}
        folders = [f for f in folders if int(f.name.split("_")[1]) in wanted]
    if not folders:
        raise SystemExit(f"error: no snapshots (step_*/model.safetensors) in {args.snapshots}")
    if args.task == "emoji":
        return score_emoji(folders, args.json)
    rows = []
    print(f"{'step':>6} {'train min':>9} {'accuracy':>9} {'source only':>11}  ({args.task}, {args.protocol})", flush=True)
    for folder in folders:
        meta = read_safetensors(folder / "model.safetensors")[1]
        model, _ = evaluate.load_pair(str(folder))
        t0 = time.time()
        r = evaluate.evaluate_digit_task(model, args.task, protocol=args.protocol)
        row = {"step": int(meta["trained_steps"]), "train_seconds": float(meta["run_seconds"]),
               "accuracy": r.accuracy, "source_only": r.source_only, "eval_seconds": round(time.time() - t0, 1),
               "task": args.task, "protocol": args.protocol}
        rows.append(row)
        print(f"{row['step']:>6} {row['train_seconds'] / 60:>9.1f} {100 * r.accuracy:>8.2f}% {100 * r.source_only:>10.2f}%",
              flush=True)
        if args.json:  # rewritten after every row: a long run keeps what it measured
            atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")
    return 0


def score_emoji(folders, json_path) -> int:
    rows = json.loads(Path(json_path).read_text()) if json_path and Path(json_path).is_file() else []
    done = {r["step"] for r in rows}
    print(f"{'step':>6} {'wall min':>8} {'cpu min':>7}  {'FID g->t':>8} {'FID t->g':>8} {'(id)':>6}  "
          f"{'L1 g->t':>7} {'L1 t->g':>7} {'(id)':>6}  {'SSIM g->t':>9} {'SSIM t->g':>9} {'(id)':>6}", flush=True)
    for folder in folders:
        meta = read_safetensors(folder / "model.safetensors")[1]
        step = int(meta["trained_steps"])
        if step in done:  # resumable: a long scoring job keeps what it measured
            continue
        model, _ = evaluate.load_pair(str(folder), domain_names=("emoji-google", "emoji-twitter"))
        t0 = time.time()
        results = evaluate.evaluate_emoji(model, cache_dir=Path.home() / ".cache" / "unit_nodes" / "fid", log=lambda m: None)
        row = {"step": step, "train_seconds": float(meta["run_seconds"]),
               "train_cpu_seconds": float(meta["run_cpu_seconds"]) if "run_cpu_seconds" in meta else None,
               "eval_seconds": round(time.time() - t0, 1), "task": "emoji"}
        for r in results:
            row[r.direction] = {k: getattr(r, k) for k in ("fid", "kid", "l1", "ssim", "identity_fid", "identity_kid", "source_fid",
                                                            "identity_l1", "identity_ssim")}
        rows.append(row)
        rows.sort(key=lambda r: r["step"])
        g, t = row["google->twitter"], row["twitter->google"]
        cpu = row["train_cpu_seconds"]
        print(f"{step:>6} {row['train_seconds'] / 60:>8.1f} {cpu / 60 if cpu else float('nan'):>7.1f}  "
              f"{g['fid']:>8.1f} {t['fid']:>8.1f} {g['identity_fid']:>6.1f}  {g['l1']:>7.4f} {t['l1']:>7.4f} "
              f"{g['identity_l1']:>6.4f}  {g['ssim']:>9.4f} {t['ssim']:>9.4f} {g['identity_ssim']:>6.4f}", flush=True)
        if json_path:
            atomic_write_text(json_path, json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
