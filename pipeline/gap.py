"""Stage `gap`: how close the translated frames come to each target weather, as a detector sees
them, before any detector is trained on them.

Per weather, the Fréchet distance and KID (evaluation/gap.py) from the BDD100K val frames of that
weather to (a) the untranslated vKITTI2 clone frames, (b) the translated frames (for `none`:
vKITTI2's rendered weather) and (c) the BDD100K train frames of that weather (the floor: same
domain), and the share of the gap the translator closes, (a − b) / (a − c). Next to it the
translate stage's edge similarity: a translator that closes the gap by moving content is no good.

The features are those of one detector checkpoint, gap.reference_model: by default this run's
own (so the graph runs offline); a study points every experiment at one fixed checkpoint so that
distances compare across experiments (README: "How close does a translator get?").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.files import atomic_dir, atomic_write_json
from common.weathers import BDD_WEATHER
from data import read_manifest
from evaluation.gap import (
    Extractor,
    Features,
    GapConfig,
    evenly_spaced,
    extract_features,
    gap_scores,
    load_extractor,
    share_closed,
)
from pipeline.common import INGEST, OUTPUTS, TRANSLATE, run_stage
from pipeline.params import load_params

GAP = OUTPUTS / "gap"
COMPARED = ("source", "translated", "floor")  # each is scored against the target's frames


class FeatureCache:
    """Each frame set's features once (the clone frames serve every weather)."""

    def __init__(self, extractor: Extractor, cfg: GapConfig) -> None:
        self.extractor, self.cfg, self.done = extractor, cfg, {}

    def get(self, label: str, paths: list[Path]) -> Features:
        if label not in self.done:
            self.done[label] = extract_features(self.extractor, evenly_spaced(
                paths, self.cfg.max_frames), self.cfg, f"gap {label}")
        return self.done[label]


def weather_gap(sets: dict[str, Features], cfg: GapConfig, geometry: dict) -> dict:
    """gap.json's entry of one weather, from the features of the target and the three others."""
    entry: dict = {"frames": {name: len(f.paths) for name, f in sets.items()},
                   "skipped": {name: len(f.skipped) for name, f in sets.items() if f.skipped},
                   "edge_similarity": geometry.get("edge_similarity_mean")}
    short = [name for name, f in sets.items() if len(f.paths) < 2]
    if short:
        entry["note"] = f"fewer than 2 readable frames in {', '.join(short)}: no score"
        return entry
    scores = {name: gap_scores(sets["target"].values, sets[name].values, cfg)
              for name in COMPARED}
    for score in ("fd", "kid"):
        values = {name: scores[name][score] for name in COMPARED}
        entry[score] = values
        entry[f"{score}_closed"] = share_closed(values["source"], values["translated"],
                                                values["floor"])
    return entry


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
                    "imgsz": cfg.imgsz, "weather": {}}
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
        entry = weather_gap(sets, cfg, geometry)
        result["weather"][weather] = entry
        print(f"gap@{weather}: " + (entry.get("note") or _summary(entry)))
    for name, features in cache.done.items():
        if features.skipped:
            print(f"gap: skipped {len(features.skipped)} unreadable frame(s) of {name}, "
                  f"e.g. {features.skipped[0]}")
    with atomic_dir(GAP) as tmp:
        atomic_write_json(tmp / "gap.json", result, sort_keys=False)


def _paths(images, split: str) -> list[Path]:
    rows = images[images["split"] == split].sort_values("image_id")
    return [Path(p) for p in rows["path"]]


def _summary(entry: dict) -> str:
    def share(value: float | None) -> str:
        return "–" if value is None or not np.isfinite(value) else f"{value:.0%}"

    fd = entry["fd"]
    return (f"FD source {fd['source']:.4g}, translated {fd['translated']:.4g}, floor "
            f"{fd['floor']:.4g}: {share(entry['fd_closed'])} of the gap closed "
            f"(KID: {share(entry['kid_closed'])}); edge similarity {entry['edge_similarity']}")


if __name__ == "__main__":
    run_stage(main)
