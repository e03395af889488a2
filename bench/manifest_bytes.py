"""Bytes a frame of a manifest (images.parquet + objects.parquet + report.json), measured on the
sample world of params.yaml's data.sample: the constant MANIFEST_BYTES_PER_FRAME in
pipeline/plan.py. Writes under /tmp/sim2real_manifest_bytes; a few minutes on 2 cores.

    python bench/manifest_bytes.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import write_manifest  # noqa: E402
from data.sample import write_sample_world  # noqa: E402
from pipeline.ingest import read_all, sample_world_roots  # noqa: E402
from pipeline.params import load_params  # noqa: E402

OUT = Path("/tmp/sim2real_manifest_bytes")


def main() -> None:
    start = time.time()
    params = load_params()
    world = write_sample_world(OUT / "world", params.data.sample)
    total_bytes = total_frames = total_boxes = 0
    for name, result in read_all(params, sample_world_roots(world)).items():
        write_manifest(result, OUT / "manifest" / name)
        size = sum(f.stat().st_size for f in (OUT / "manifest" / name).iterdir())
        frames, boxes = len(result.images), len(result.objects)
        print(f"{name}: {frames} frames, {boxes} boxes, {size} bytes, {size / frames:.0f} a frame")
        total_bytes, total_frames, total_boxes = (total_bytes + size, total_frames + frames,
                                                  total_boxes + boxes)
    print(f"all: {total_frames} frames, {total_boxes} boxes, {total_bytes} bytes, "
          f"{total_bytes / total_frames:.0f} a frame ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
