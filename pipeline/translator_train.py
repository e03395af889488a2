"""Stage `translator_train@<weather>`: fit the chosen translator for one weather.

Source = vKITTI2 `clone` frames (clean synthetic); target = BDD100K train frames whose `weather`
attribute matches (fog -> foggy, rain -> rainy, overcast -> overcast).
"""

from __future__ import annotations

from pathlib import Path

import translators
from common.errors import UserError
from common.files import atomic_dir
from common.runtime import resolve_device, seed_everything
from data import read_manifest
from data.vkitti2 import variation_frames
from pipeline.common import INGEST, TRANSLATOR_CHECKPOINTS, TRANSLATORS, run_stage
from pipeline.params import BDD_WEATHER, WEATHERS, load_params


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in WEATHERS:
        raise UserError(f"usage: python -m pipeline.translator_train {{{','.join(WEATHERS)}}}")
    weather = argv[0]
    params = load_params()
    source, target = training_frames(weather)
    translator = translators.get(params.translator)
    seed_everything(params.seed)
    checkpoints = TRANSLATOR_CHECKPOINTS / weather
    with atomic_dir(TRANSLATORS / weather) as tmp:
        translator.fit(source, target, tmp, params.translator_config(), weather=weather,
                       device=resolve_device(params.translators.device, "translators.device"),
                       checkpoint_dir=checkpoints)
    print(f"translator_train@{weather}: {params.translator} fitted on {len(source)} sim frames "
          f"and {len(target)} BDD {BDD_WEATHER[weather]} frames")


def training_frames(weather: str) -> tuple[list[Path], list[Path]]:
    source = variation_frames(read_manifest(INGEST / "vkitti2"), "clone").images["path"]
    bdd = read_manifest(INGEST / "bdd100k").images
    target = bdd.loc[(bdd["split"] == "train") & (bdd["weather"] == BDD_WEATHER[weather]), "path"]
    if target.empty:
        raise UserError(f"no BDD100K train frames with weather={BDD_WEATHER[weather]!r} to learn "
                         f"the {weather} look from")
    return [Path(p) for p in source], [Path(p) for p in target]


if __name__ == "__main__":
    run_stage(main)
