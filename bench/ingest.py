"""Ingest at full scale: wall time and peak RSS of the readers against their budgets.

    python bench/ingest.py                    # 70,000 BDD frames (~1.3M boxes), 7,481 KITTI files
    python bench/ingest.py --bdd-frames 7000 --kitti-files 750   # a quick look

Synthetic inputs with the real formats are written to a temporary directory first; each reader
then runs in a fresh child process, so its peak RSS is its own (os.wait4 rusage), not the
generator's. Budgets (the reference the ratios are against): BDD100K 20 s and 3 GB;
KITTI 3 s. BDD images are empty placeholder files (check_images=False: only existence is
checked); KITTI images are hard links of one real 1242x375 PNG, so headers and tails are read.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGETS = {"bdd100k": (20.0, 3.0), "kitti": (3.0, None)}  # seconds, GB
# Roughly BDD100K det_20's class mix (1.29M boxes over 70k train frames, ~18.4 per frame).
BDD_MIX = {"car": 0.55, "traffic sign": 0.185, "traffic light": 0.145, "pedestrian": 0.07,
           "truck": 0.023, "bus": 0.009, "bicycle": 0.006, "rider": 0.004, "motorcycle": 0.002,
           "other vehicle": 0.003, "trailer": 0.0001, "train": 0.0001, "other person": 0.0008}
KITTI_MIX = ["Car"] * 28 + ["DontCare"] * 11 + ["Pedestrian"] * 4 + ["Van"] * 3 + ["Cyclist",
             "Truck", "Misc", "Tram"]


def write_bdd(directory: Path, n_frames: int, seed: int) -> tuple[Path, Path, int]:
    rng = random.Random(seed)
    names, weights = list(BDD_MIX), list(BDD_MIX.values())
    images = directory / "bdd_images" / "train"
    images.mkdir(parents=True)
    labels_path, n_boxes = directory / "det_train.json", 0
    with open(labels_path, "w") as out:
        out.write("[")
        for index in range(n_frames):
            name = f"{index:08x}-{rng.getrandbits(32):08x}.jpg"
            (images / name).touch()
            labels = []
            for label_id, category in enumerate(rng.choices(names, weights,
                                                            k=rng.randint(4, 33))):
                x1, y1 = rng.uniform(-5, 1250), rng.uniform(0, 700)
                labels.append({"id": str(n_boxes + label_id), "category": category,
                               "attributes": {"occluded": rng.random() < 0.6,
                                              "truncated": rng.random() < 0.07,
                                              "trafficLightColor": "NA"},
                               "box2d": {"x1": x1, "y1": y1, "x2": x1 + rng.uniform(2, 300),
                                         "y2": y1 + rng.uniform(2, 200)}})
            n_boxes += len(labels)
            frame = {"name": name, "attributes": {"weather": rng.choice(["clear", "rainy",
                                                                         "foggy", "overcast"]),
                                                  "timeofday": "daytime",
                                                  "scene": "city street"},
                     "timestamp": 10000, "labels": labels}
            out.write(("," if index else "") + json.dumps(frame))
        out.write("]")
    return labels_path, images.parent, n_boxes


def write_kitti(directory: Path, n_files: int, seed: int) -> tuple[Path, int]:
    import cv2
    import numpy as np

    rng = random.Random(seed)
    base = directory / "kitti" / "training"
    (base / "image_2").mkdir(parents=True)
    (base / "label_2").mkdir()
    template = directory / "template.png"
    cv2.imwrite(str(template), np.full((375, 1242, 3), 90, np.uint8))
    n_lines = 0
    for index in range(n_files):
        os.link(template, base / "image_2" / f"{index:06d}.png")
        lines = []
        for kind in rng.choices(KITTI_MIX, k=rng.randint(1, 15)):
            x1, y1 = rng.uniform(0, 1200), rng.uniform(0, 330)
            box = f"{x1:.2f} {y1:.2f} {x1 + rng.uniform(5, 300):.2f} {y1 + rng.uniform(5, 150):.2f}"
            if kind == "DontCare":
                lines.append(f"DontCare -1 -1 -10 {box} -1 -1 -1 -1000 -1000 -1000 -10")
            else:
                lines.append(f"{kind} {rng.choice(['0.00', '0.31'])} {rng.randint(0, 3)} -1.57 "
                             f"{box} 1.52 1.63 3.88 -3.11 1.72 24.16 -1.69")
        n_lines += len(lines)
        (base / "label_2" / f"{index:06d}.txt").write_text("\n".join(lines) + "\n")
    return base.parent, n_lines


def run_child(args: list[str]) -> tuple[float, float, dict]:
    """Run this script's `_read` in a fresh process: (wall s, peak RSS GB, its summary).

    The summary gains cpu_s: the child's user + system time, which (unlike wall time) does not
    grow when other processes share the CPU.
    """
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, __file__, "_read", *args], stdout=subprocess.PIPE,
                             cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"reader failed ({status}): {args}")
    summary = json.loads(output)
    summary["cpu_s"] = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss / 1024**2, summary


def read_in_child(kind: str, paths: list[str]) -> None:
    """The measured part: one reader call, printing a short JSON summary on stdout."""
    from data.bdd100k import read_bdd100k
    from data.kitti import read_kitti_detection

    start = time.perf_counter()
    if kind == "bdd100k":
        result = read_bdd100k(Path(paths[0]), Path(paths[1]), {"car": "car", "truck": "truck"},
                              "train", check_images=False)
    else:
        result = read_kitti_detection(Path(paths[0]), {"Car": "car", "Van": "car",
                                                       "Truck": "truck"})
    print(json.dumps({"images": len(result.images), "objects": len(result.objects),
                      "skipped": result.report["skipped_total"],
                      "dropped": sum(result.report["dropped_by_class_map"].values()),
                      "in_reader_s": time.perf_counter() - start}))


def report(name: str, size: str, wall: float, peak_gb: float, summary: dict) -> None:
    seconds_budget, memory_budget = BUDGETS[name]
    memory = f", {peak_gb / memory_budget:.2f} of {memory_budget:.0f} GB" if memory_budget else ""
    print(f"{name:8s} {size}: {wall:6.2f} s wall, {summary['cpu_s']:.2f} s CPU (reader call "
          f"alone {summary['in_reader_s']:.2f} s wall), peak RSS {peak_gb:.2f} GB -> wall "
          f"{wall / seconds_budget:.2f}, CPU {summary['cpu_s'] / seconds_budget:.2f} of the "
          f"{seconds_budget:.0f} s budget{memory}; load average {os.getloadavg()[0]:.1f}; kept "
          f"{summary['images']} images / {summary['objects']} objects, {summary['dropped']} "
          f"dropped by class map, {summary['skipped']} skipped")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_read":
        read_in_child(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bdd-frames", type=int, default=70_000)
    parser.add_argument("--kitti-files", type=int, default=7_481)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        directory = Path(tmp)
        start = time.perf_counter()
        kitti_root, n_lines = write_kitti(directory, args.kitti_files, args.seed)
        print(f"wrote {args.kitti_files} KITTI label files ({n_lines} lines) "
              f"in {time.perf_counter() - start:.1f} s", flush=True)
        wall, peak, summary = run_child(["kitti", str(kitti_root)])
        report("kitti", f"{args.kitti_files} files", wall, peak, summary)
        start = time.perf_counter()
        labels, images, n_boxes = write_bdd(directory, args.bdd_frames, args.seed)
        size_mb = labels.stat().st_size / 1024**2
        print(f"wrote {args.bdd_frames} BDD frames ({n_boxes} boxes, {size_mb:.0f} MB JSON) "
              f"in {time.perf_counter() - start:.1f} s", flush=True)
        wall, peak, summary = run_child(["bdd100k", str(labels), str(images)])
        report("bdd100k", f"{args.bdd_frames} frames / {n_boxes} boxes", wall, peak, summary)


if __name__ == "__main__":
    main()
