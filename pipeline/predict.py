"""Stage `predict`: the detector's scored boxes on BDD100K val, as Scalabel JSON."""

from __future__ import annotations

from pathlib import Path

from common.files import atomic_dir
from data import read_manifest
from detection import predict, write_held_out, write_scalabel
from detection.model_source import check_detector_model
from pipeline.common import DETECTOR_WEIGHTS, INGEST, PREDICT, run_stage
from pipeline.params import load_params


def main(argv: list[str]) -> None:
    params = load_params()
    check_detector_model(params.detector.model, params.detector.imgsz)
    bdd = read_manifest(INGEST / "bdd100k").images
    val = bdd[bdd["split"] == "val"].sort_values("image_id")
    images = [(row.image_id, Path(row.path)) for row in val.itertuples()]
    predictions = predict(DETECTOR_WEIGHTS, images, params.detector)
    with atomic_dir(PREDICT) as tmp:
        write_scalabel(predictions, tmp / "predictions.json")
        # what the detector reached on held-out frames of its own training domain, for the report
        write_held_out(DETECTOR_WEIGHTS, tmp / "held_out.json")
    print(f"predict: {len(predictions)} boxes on {len(images)} BDD100K val frames")


if __name__ == "__main__":
    run_stage(main)
