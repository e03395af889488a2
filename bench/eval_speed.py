"""Speed and exactness of evaluation's AP50 against pycocotools and faster-coco-eval.

    python bench/eval_speed.py [--images 10000] [--gt 30] [--preds 100] [--classes 3]

One synthetic world (per image ~30 ground truths incl. ~3% crowd regions, ~100 predictions:
jittered copies of ground truths and random boxes; float32 scores as a detector emits them,
rounded to 2 decimals so there are many score ties) is evaluated by all three on identical
boxes: IoU 0.5 only, area range "all" only, 100 detections per image and class (pycocotools'
fastest fair setting).

Timed "core" = from each tool's loaded input to per-class AP: ours = match + precision on the
arrays; pycocotools / faster-coco-eval = evaluate() + accumulate() on loaded COCO objects.
"end to end" adds building that input from the in-memory records (ours: DataFrames -> arrays;
theirs: COCO index + loadRes). The last line compares the core times.

Both clocks are measured. The last line uses process CPU time by default (--clock cpu): all
three run single-threaded here, so on an idle machine it equals wall time, and on a shared
machine it is not skewed by whichever tool happened to run while a neighbour was busy.
Our time is the best of --repeat runs after a warm-up; the references run once (20 s each).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.core import EvalConfig, class_ap, evaluate, to_arrays  # noqa: E402

WIDTH, HEIGHT = 1280.0, 720.0


def make_world(n_images: int, gt_per_image: int, preds_per_image: int, n_classes: int,
               seed: int, float64_scores: bool = False
               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    rng = np.random.default_rng(seed)
    classes = [f"class{k}" for k in range(n_classes)]
    names = np.array([f"{i:07d}.jpg" for i in range(n_images)])
    images = pd.DataFrame({"image_id": names,
                           "n_occluded_vehicles": rng.integers(0, 20, n_images)})

    n_gt = rng.poisson(gt_per_image, n_images)
    gt_image = np.repeat(np.arange(n_images), n_gt)
    crowd = rng.random(len(gt_image)) < 0.03
    w = np.where(crowd, rng.uniform(100, 500, len(gt_image)), rng.lognormal(4, 0.7, len(gt_image)))
    h = np.where(crowd, rng.uniform(50, 250, len(gt_image)), w * rng.uniform(0.4, 1.2, len(w)))
    w, h = np.minimum(w, WIDTH - 1), np.minimum(h, HEIGHT - 1)
    x1 = np.round(rng.uniform(0, WIDTH - w), 1)
    y1 = np.round(rng.uniform(0, HEIGHT - h), 1)
    gt_cls = rng.integers(0, n_classes, len(gt_image))
    gt = pd.DataFrame({"image_id": names[gt_image], "class_name": np.array(classes)[gt_cls],
                       "x1": x1, "y1": y1, "x2": np.round(x1 + w, 1), "y2": np.round(y1 + h, 1),
                       "ignore": crowd})

    n_pred = rng.poisson(preds_per_image, n_images)
    pred_image = np.repeat(np.arange(n_images), n_pred)
    first_gt = np.concatenate([[0], np.cumsum(n_gt)[:-1]])
    has_gt = n_gt[pred_image] > 0
    source = first_gt[pred_image] + (rng.random(len(pred_image))
                                     * np.maximum(n_gt[pred_image], 1)).astype(int)
    source = np.minimum(source, len(gt) - 1)
    copy = has_gt & (rng.random(len(pred_image)) < 0.5)
    sw, sh = (gt["x2"] - gt["x1"]).to_numpy()[source], (gt["y2"] - gt["y1"]).to_numpy()[source]
    pw = np.where(copy, sw * rng.uniform(0.8, 1.25, len(source)),
                  rng.lognormal(4, 0.7, len(source)))
    ph = np.where(copy, sh * rng.uniform(0.8, 1.25, len(source)), pw * rng.uniform(0.4, 1.2,
                                                                                len(source)))
    px = np.where(copy, gt["x1"].to_numpy()[source] + rng.normal(0, 0.08, len(source)) * sw,
                  rng.uniform(0, WIDTH, len(source)))
    py = np.where(copy, gt["y1"].to_numpy()[source] + rng.normal(0, 0.08, len(source)) * sh,
                  rng.uniform(0, HEIGHT, len(source)))
    pred_cls = np.where(copy & (rng.random(len(source)) < 0.9), gt_cls[source],
                        rng.integers(0, n_classes, len(source)))
    score = np.round(np.where(copy, rng.beta(4, 2, len(source)), rng.beta(1.5, 4, len(source))), 2)
    if not float64_scores:  # what a detector emits: float32 scores (here with many ties)
        score = score.astype(np.float32).astype(np.float64)
    preds = pd.DataFrame({"image_id": names[pred_image], "class_name": np.array(classes)[pred_cls],
                          "x1": px, "y1": py, "x2": px + pw, "y2": py + ph, "score": score})
    return images, gt, preds, classes


def coco_inputs(images: pd.DataFrame, gt: pd.DataFrame, preds: pd.DataFrame,
                classes: list[str]) -> tuple[dict, list[dict]]:
    """The same boxes as a COCO dataset + results list (image ids in sorted image_id order)."""
    ids = {name: i + 1 for i, name in enumerate(sorted(images["image_id"]))}
    cats = {name: k + 1 for k, name in enumerate(classes)}
    g = gt.to_numpy()
    annotations = [{"id": j + 1, "image_id": ids[r[0]], "category_id": cats[r[1]],
                    "bbox": [r[2], r[3], r[4] - r[2], r[5] - r[3]],
                    "area": (r[4] - r[2]) * (r[5] - r[3]), "iscrowd": int(r[6])}
                   for j, r in enumerate(g)]
    dataset = {"images": [{"id": i} for i in ids.values()],
               "categories": [{"id": k, "name": n} for n, k in cats.items()],
               "annotations": annotations}
    results = [{"image_id": ids[r[0]], "category_id": cats[r[1]],
                "bbox": [r[2], r[3], r[4] - r[2], r[5] - r[3]], "score": r[6]}
               for r in preds.to_numpy()]
    return dataset, results


def clocks() -> np.ndarray:
    return np.array([time.perf_counter(), time.process_time()])  # (wall, cpu)


def run_coco(coco_cls, eval_cls, dataset: dict, results: list[dict], **kwargs) -> tuple:
    """(load, evaluate+accumulate) as (wall, cpu) seconds each, and per-class AP50."""
    with contextlib.redirect_stdout(io.StringIO()):
        start = clocks()
        coco_gt = coco_cls()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        loaded = clocks()
        ev = eval_cls(coco_gt, coco_dt, "bbox", **kwargs)
        ev.params.iouThrs = np.array([0.5])
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.params.maxDets = [100]
        ev.evaluate()
        ev.accumulate()
        done = clocks()
    precision = ev.eval["precision"][0, :, :, 0, 0]  # (101, K)
    ap = np.where((precision < 0).all(axis=0), np.nan, precision.mean(axis=0))
    return loaded - start, done - loaded, ap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--gt", type=int, default=30)
    parser.add_argument("--preds", type=int, default=100)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="our runs (best is reported)")
    parser.add_argument("--float64-scores", action="store_true",
                        help="scores that are not float32 values (our slower general sort)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="clock of the last line (both are printed)")
    args = parser.parse_args()

    images, gt, preds, classes = make_world(args.images, args.gt, args.preds, args.classes,
                                            args.seed, args.float64_scores)
    print(f"world: {len(images)} images, {len(gt)} GT ({int(gt['ignore'].sum())} crowd), "
          f"{len(preds)} predictions, {preds['score'].nunique()} distinct scores", flush=True)
    cfg = EvalConfig(classes=classes)

    prep_times, core_times = [], []
    for _ in range(args.repeat + 1):  # the first run warms caches and page tables up
        start = clocks()
        arrays = to_arrays(images, gt, preds, cfg)
        prepared = clocks()
        ours_ap = class_ap(arrays, cfg, [0.5])[0]
        done = clocks()
        prep_times.append(prepared - start)
        core_times.append(done - prepared)
    ours_prep, ours_core = np.min(prep_times[1:], axis=0), np.min(core_times[1:], axis=0)
    tracemalloc.start()
    class_ap(arrays, cfg, [0.5])
    ours_peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"ours: prepare {ours_prep[0]:.3f}s core {ours_core[0]:.3f}s wall "
          f"(cpu {ours_prep[1]:.3f}s, {ours_core[1]:.3f}s); peak {ours_peak_mb:.0f} MB of numpy "
          "allocations in the AP50 core", flush=True)
    start = time.perf_counter()
    full = evaluate(images, gt, preds, cfg)
    full_seconds = time.perf_counter() - start
    tracemalloc.start()
    evaluate(images, gt, preds, cfg)
    full_peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"ours full evaluate() (AP50 + AP50:95, {len(full.buckets)} buckets, PR curves): "
          f"{full_seconds:.2f}s, peak {full_peak_mb:.0f} MB", flush=True)

    from faster_coco_eval import COCO as FasterCOCO
    from faster_coco_eval import COCOeval_faster
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dataset, results = coco_inputs(images, gt, preds, classes)
    f_load, f_core, faster_ap = run_coco(FasterCOCO, COCOeval_faster, dataset, results,
                                         print_function=lambda *_: None)
    print(f"faster-coco-eval: load {f_load[0]:.2f}s core {f_core[0]:.2f}s wall "
          f"(cpu {f_load[1]:.2f}s, {f_core[1]:.2f}s)", flush=True)
    dataset, results = coco_inputs(images, gt, preds, classes)  # loadRes edits results
    p_load, p_core, pycoco_ap = run_coco(COCO, COCOeval, dataset, results)
    print(f"pycocotools: load {p_load[0]:.2f}s core {p_core[0]:.2f}s wall "
          f"(cpu {p_load[1]:.2f}s, {p_core[1]:.2f}s)", flush=True)

    d_pycoco = float(np.nanmax(np.abs(ours_ap - pycoco_ap)))
    d_faster = float(np.nanmax(np.abs(ours_ap - faster_ap)))
    assert np.array_equal(np.isnan(ours_ap), np.isnan(pycoco_ap))
    print(f"AP50 per class: ours {np.round(ours_ap, 6).tolist()}; "
          f"max|dAP| vs faster-coco-eval {d_faster:.3g}")

    def line(label: str, ours: float, pycoco: float, faster: float, digits: int) -> str:
        return (f"{label} ours={ours:.{digits}f} pycocotools={pycoco:.2f} "
                f"faster_coco_eval={faster:.2f} speedup_vs_pycocotools={pycoco / ours:.1f} "
                f"speedup_vs_faster_coco_eval={faster / ours:.1f}")

    headline = 1 if args.clock == "cpu" else 0
    for c, name in ((0, "wall"), (1, "cpu")):
        print(line(f"end to end ({name}):", *(x[c] for x in (ours_prep + ours_core,
                                                              p_load + p_core, f_load + f_core)),
                   3))
    print(line(f"core ({('wall', 'cpu')[1 - headline]}):", ours_core[1 - headline],
               p_core[1 - headline], f_core[1 - headline], 3))
    print(line("eval_speed:", ours_core[headline], p_core[headline], f_core[headline], 3)
          + f" max_abs_dAP={d_pycoco:.3g}")


if __name__ == "__main__":
    main()
