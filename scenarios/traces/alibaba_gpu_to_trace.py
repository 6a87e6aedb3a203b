#!/usr/bin/env python3
"""Converts a window of the Alibaba GPU cluster trace (cluster-trace-gpu-v2023,
openb_pod_list_default.csv) into heatscaler's trace format (docs/simulator.md).

Writes two files, so GPU pods and CPU-only pods can get different placements:
  <out>-gpu.csv  pods requesting GPUs (they tolerate the GPU nodes' taint)
  <out>-cpu.csv  pods requesting none

Times are shifted so the window starts at 0; pods alive at the window's start
start at 0; pods still alive at its end have no `end` row. A GPU-sharing pod
(num_gpu 1, gpu_milli < 1000) requests one whole GPU: the simulator has no
fractional GPUs, so GPU demand is overstated for those pods.

usage: alibaba_gpu_to_trace.py POD_LIST.csv OUT_PREFIX [--days 7] [--from-end]
"""

import argparse
import csv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pod_list")
    ap.add_argument("out_prefix")
    ap.add_argument("--days", type=float, default=7.0)
    args = ap.parse_args()

    pods = list(csv.DictReader(open(args.pod_list, newline="")))
    end = max(int(p["deletion_time"]) for p in pods)
    start = end - int(args.days * 86400)
    rows = {"gpu": [], "cpu": []}
    for p in pods:
        created, deleted = int(p["creation_time"]), int(p["deletion_time"])
        if created >= end or deleted <= start:
            continue
        gpus = int(p["num_gpu"])
        kind = "gpu" if gpus > 0 else "cpu"
        begin = max(created, start) - start
        cells = [p["cpu_milli"] + "m", p["memory_mib"] + "Mi", str(gpus)]
        rows[kind].append((begin, 0, p["name"], "start", cells))
        if deleted < end:
            rows[kind].append((deleted - start, 1, p["name"], "end", ["", "", ""]))
    for kind, out in rows.items():
        out.sort(key=lambda r: (r[0], r[1], r[2]))
        with open(f"{args.out_prefix}-{kind}.csv", "w", newline="") as f:
            f.write(
                f"# Alibaba cluster-trace-gpu-v2023 (openb_pod_list_default.csv), the last {args.days:g} days,\n"
                f"# {kind.upper()} pods; converted by scenarios/traces/alibaba_gpu_to_trace.py.\n"
            )
            f.write("time,pod,event,cpu,memory,nvidia.com/gpu\n")
            for t, _, name, event, cells in out:
                f.write(",".join([str(t), name, event] + cells) + "\n")


if __name__ == "__main__":
    main()
