"""Stage `evaluate`: COCO-exact AP on BDD100K val, overall and per occlusion/weather/time bucket."""

from __future__ import annotations

import json

from data import read_manifest
from evaluation import load_predictions
from evaluation.run import run_evaluation, skip_record
from pipeline.common import EVAL, INGEST, PREDICT, run_stage
from pipeline.params import load_params


def main(argv: list[str]) -> None:
    params = load_params()
    bdd = read_manifest(INGEST / "bdd100k")
    images = bdd.images[bdd.images["split"] == "val"]
    gt = bdd.objects[bdd.objects["image_id"].isin(images["image_id"])]
    # all predictions go in: evaluate() counts (and reports) frames that are not in the GT
    predictions, read_report = load_predictions(PREDICT / "predictions.json")
    held_out = json.loads((PREDICT / "held_out.json").read_text())
    # what ingest left out of the val split (a bad box, a missing image): metrics.json says so
    val = bdd.report.get("val", {})
    skipped = {"ground_truth": skip_record(val.get("source", str(INGEST / "bdd100k")),
                                           val.get("skipped", {})),
               "predictions": skip_record(read_report["file"], read_report["skipped"])}
    _, report = run_evaluation(images, gt, predictions, params.evaluation, EVAL,
                               held_out=held_out, skipped=skipped)
    print(report)


if __name__ == "__main__":
    run_stage(main)
