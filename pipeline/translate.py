"""Stage `translate@<weather>`: give the sim frames the weather's look; labels are reused.

Writes outputs/translate/<weather>/ with the translated frames (same names and sizes), a
manifest (images + objects, the clone frames' boxes unchanged) and geometry.json: how well each
translation keeps the source's edges (1 = same structure), since a translator that moves content
would silently break the reused labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

import translators
from common.errors import MissingInputError, UserError
from common.files import atomic_dir, atomic_write_bytes
from common.runtime import resolve_device, seed_everything
from common.weathers import WEATHERS
from data import IngestResult, read_manifest, write_manifest
from data.sample import ideal_frame_path, world_paths
from data.vkitti2 import same_frames, variation_frames
from pipeline.common import INGEST, SAMPLE_WORLD, TRANSLATE, TRANSLATORS, run_stage
from pipeline.params import load_params
from translators.geometry import edge_similarity
from translators.io import read_rgb, translate_files

GEOMETRY_FRAMES = 64  # frames checked per weather; evenly spaced, enough for a stable mean


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in WEATHERS:
        raise UserError(f"usage: python -m pipeline.translate {{{','.join(WEATHERS)}}}")
    weather = argv[0]
    params = load_params()
    # forward passes only: a list of GPUs translates on its first one
    device = resolve_device(params.translators.device, "translators.device")
    vkitti2 = read_manifest(INGEST / "vkitti2")
    translator = translators.get(params.translator)
    clone = variation_frames(vkitti2, "clone")
    seed_everything(params.seed)
    with atomic_dir(TRANSLATE / weather) as tmp:
        if translator.frames == "rendered":
            # the baseline: vKITTI2's own rendered weather, same frames, same boxes
            result = variation_frames(vkitti2, weather)
            outputs = [Path(p) for p in result.images["path"]]
            sources = [Path(p) for p in same_frames(result.images, clone.images)["path"]]
        else:
            sources = [Path(p) for p in clone.images["path"]]
            names = [_relative_name(image_id) for image_id in clone.images["image_id"]]
            if translator.frames == "ideal":
                outputs = _copy_ideal_frames(clone.images["image_id"], weather, tmp / "images",
                                             names)
            else:
                translator.load(TRANSLATORS / weather, device)
                outputs = translate_files(translator, sources, tmp / "images", names=names,
                                          device=device)
            final = [TRANSLATE / weather / "images" / name for name in names]
            result = _renamed(clone, weather, [str(p) for p in final])
        write_manifest(result, tmp / "manifest")
        geometry = _geometry(sources, outputs)
        (tmp / "geometry.json").write_text(json.dumps(
            {"translator": params.translator, "weather": weather, **geometry}, indent=2) + "\n")
    print(f"translate@{weather}: {len(result.images)} frames with {params.translator}; "
          f"edge similarity to the source {geometry['edge_similarity_mean']:.3f}")


def _relative_name(image_id: str) -> str:
    # "Scene01/clone/Camera_0/00005" -> "Scene01/Camera_0/00005.jpg"
    scene, _variation, camera, frame = image_id.split("/")
    return f"{scene}/{camera}/{frame}.jpg"


def _copy_ideal_frames(image_ids: list[str], weather: str, out: Path, names: list[str]
                       ) -> list[Path]:
    """The sample world's real-look render of each clone frame in `weather` (translator
    `ideal`), copied to out/<name>: a stage's outs are its own bytes."""
    ideal_root = world_paths(SAMPLE_WORLD).ideal_root
    outputs = []
    for image_id, name in zip(image_ids, names, strict=True):
        scene, _variation, camera, frame = image_id.split("/")
        source = ideal_frame_path(ideal_root, weather, scene, camera, int(frame))
        if not source.is_file():
            raise MissingInputError(f"{source} not found: the `ideal` translator needs the "
                                    "sample world's renders (data.source: sample; re-run ingest)")
        outputs.append(out / name)
        atomic_write_bytes(outputs[-1], source.read_bytes())
    return outputs


def _renamed(clone: IngestResult, weather: str, paths: list[str]) -> IngestResult:
    new_id = {old: old.replace("/clone/", f"/{weather}/", 1) for old in clone.images["image_id"]}
    images = clone.images.assign(path=paths, variation=weather,
                                 image_id=clone.images["image_id"].map(new_id))
    objects = clone.objects.assign(image_id=clone.objects["image_id"].map(new_id))
    return IngestResult(images=images, objects=objects, report={"translated_from": "clone"})


def _geometry(sources: list[Path], outputs: list[Path]) -> dict:
    picks = np.linspace(0, len(sources) - 1, num=min(GEOMETRY_FRAMES, len(sources))).round()
    scores = []
    for i in sorted(set(picks.astype(int).tolist())):
        source = _tensor(read_rgb(sources[i]))
        output = _tensor(read_rgb(outputs[i]))
        scores.append(float(edge_similarity(source, output)[0]))
    return {"edge_similarity_mean": float(np.mean(scores)),
            "edge_similarity_min": float(np.min(scores)), "frames_checked": len(scores)}


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)


if __name__ == "__main__":
    run_stage(main)
