"""Stage `gap_reference`: the fixed extractor the gap stage measures with by default.

A yolov5n with seeded weights (evaluation.gap.seeded_checkpoint), written once as a checkpoint
file so that `gap.reference_model` is a path either way: this file, or a trained detector's
best.pt. The stage has no params, so every experiment of a study gets the same file from the
run-cache: one feature space for every translator and seed, and no detector training needed
before the gap can be scored.
"""

from __future__ import annotations

from common.files import atomic_dir
from evaluation.gap import seeded_checkpoint
from pipeline.common import GAP_REFERENCE, run_stage


def main(argv: list[str]) -> None:
    with atomic_dir(GAP_REFERENCE.parent) as tmp:
        # written under its final name: torch.save names the archive's root after the file
        seeded_checkpoint(tmp / GAP_REFERENCE.name)
    print(f"gap_reference: wrote {GAP_REFERENCE}")


if __name__ == "__main__":
    run_stage(main)
