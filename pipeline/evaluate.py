"""Stage `evaluate`: COCO-exact AP on BDD100K val, overall and per occlusion/weather/time bucket."""

from __future__ import annotations

import json

from data import read_manifest
from evaluation import evaluate, load_predictions, write_outputs
from evaluation.recall import recall_breakdown, render_recall
from evaluation.report import render_held_out
from pipeline.common import EVAL, INGEST, PREDICT, run_stage
from pipeline.params import load_params


def main(argv: list[str]) -> None:
    params = load_params()
    bdd = read_manifest(INGEST / "bdd100k")
    images = bdd.images[bdd.images["split"] == "val"]
    gt = bdd.objects[bdd.objects["image_id"].isin(images["image_id"])]
    # all predictions go in: evaluate() counts (and reports) frames that are not in the GT
    predictions, _ = load_predictions(PREDICT / "predictions.json")
    result = evaluate(images, gt, predictions, params.evaluation)
    found = render_recall(recall_breakdown(images, gt, predictions, params.evaluation),
                          params.evaluation)
    held_out = json.loads((PREDICT / "held_out.json").read_text())
    result.metrics["held_out"] = held_out
    appendix = found + render_held_out(held_out, result.metrics["map50"])
    write_outputs(result, EVAL, appendix=appendix)
    print(result.report + appendix)


if __name__ == "__main__":
    run_stage(main)
