"""Stage `gap`: how close the translated frames come to each target weather, as a detector sees
them, before any detector is trained on them.

Per weather, the Fréchet distance and KID (evaluation/gap.py) from the BDD100K val frames of that
weather to (a) the untranslated vKITTI2 clone frames, (b) the translated frames (for `none`:
vKITTI2's rendered weather) and (c) the BDD100K train frames of that weather (the floor: same
domain), and the share of the gap the translator closes, (a − b) / (a − c). Next to it the
translate stage's edge similarity: a translator that closes the gap by moving content is no good.

The features are those of one checkpoint, gap.reference_model: by default the fixed seeded
extractor of stage gap_reference, the same for every experiment, so distances compare across
translators and seeds; or a trained detector's (README: "How close does a translator get?").
"""

from __future__ import annotations

import json
from pathlib import Path

from common.files import atomic_dir, atomic_write_json
from common.weathers import BDD_WEATHER
from data import read_manifest
from evaluation.gap import FeatureCache, gap_summary, load_extractor, weather_gap
from pipeline.common import GAP_JSON, INGEST, TRANSLATE, run_stage
from pipeline.params import load_params


def main(argv: list[str]) -> None:
    params = load_params()
    cfg = params.gap
    extractor = load_extractor(Path(cfg.reference_model), cfg.device,
                               hint="set gap.reference_model in params.yaml")
    bdd = read_manifest(INGEST / "bdd100k").images
    vkitti2 = read_manifest(INGEST / "vkitti2").images
    clone = [Path(p) for p in vkitti2.loc[vkitti2["variation"] == "clone", "path"]]
    cache = FeatureCache(extractor, cfg)
    result: dict = {"translator": params.translator, "reference_model": cfg.reference_model,
                    "reference_sha256": extractor.checkpoint_sha256, "features": extractor.name,
                    "imgsz": cfg.imgsz, "crop_aspect": cfg.crop_aspect, "weather": {}}
    for weather in params.weathers:
        bdd_weather = bdd[bdd["weather"] == BDD_WEATHER[weather]]
        translated = read_manifest(TRANSLATE / weather / "manifest").images
        sets = {
            "target": cache.get(f"bdd val {weather}", _paths(bdd_weather, "val")),
            "source": cache.get("vkitti2 clone", clone),
            "translated": cache.get(f"translated {weather}",
                                    [Path(p) for p in translated["path"]]),
            "floor": cache.get(f"bdd train {weather}", _paths(bdd_weather, "train")),
        }
        geometry_file = TRANSLATE / weather / "geometry.json"
        geometry = json.loads(geometry_file.read_text()) if geometry_file.is_file() else {}
        entry = weather_gap(sets, cfg, geometry.get("edge_similarity_mean"))
        result["weather"][weather] = entry
        print(f"gap@{weather}: " + (entry.get("note") or gap_summary(entry)))
    for name, features in cache.done.items():
        if features.skipped:
            print(f"gap: skipped {len(features.skipped)} unreadable frame(s) of {name}, "
                  f"e.g. {features.skipped[0]}")
    with atomic_dir(GAP_JSON.parent) as tmp:
        atomic_write_json(tmp / GAP_JSON.name, result, sort_keys=False)


def _paths(images, split: str) -> list[Path]:
    rows = images[images["split"] == split].sort_values("image_id")
    return [Path(p) for p in rows["path"]]


if __name__ == "__main__":
    run_stage(main)
