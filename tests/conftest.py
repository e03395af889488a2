import os
from pathlib import Path

import pytest
from tiny_repo import make_repo

# Sleeping, not spinning, OpenMP threads: pytest and the subprocesses it starts share the cores,
# where spinning threads stall each other (pipeline/__init__.py explains the stages' choice).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# The files that take longest, longest first (their slowest tests, measured alone on 2 busy
# cores at 29c656d: 442, 538, 248, 61, 40, 26 s). `make test` hands whole files to two xdist
# workers in collection order (Makefile: PYTEST), so these start first and the short files fill
# in around them; a long file left for the end would run alone on one core.
LONGEST_FIRST = ("test_pipeline_e2e.py", "test_pipeline_study.py", "test_pipeline_faults.py",
                 "test_detection.py", "test_pipeline_translator_train.py",
                 "test_translators_cyclegan.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a file, and for the other files, pytest's order


# The real BDD100K sample (tests/fixtures): 202 frames of one video with a real detector's
# predictions, shared by the evaluation tests that compare against pycocotools.
BDD100K_MOT = (Path(__file__).resolve().parent / "fixtures" / "bdd100k"
               / "scalabel_mot_sample")


@pytest.fixture(scope="module")  # a fresh copy per module: no test sees another's edits
def mot_tables():
    """(images, objects, predictions) of the BDD100K MOT sample, car and truck kept."""
    from data.bdd100k import frames_to_tables, load_frames
    from evaluation import load_predictions

    tables = frames_to_tables(load_frames(BDD100K_MOT / "track_sample_anns.json"),
                              {"car": "car", "truck": "truck"}, split="val", source="mot")
    preds, _ = load_predictions(BDD100K_MOT / "bbox_predictions.json")
    return tables.images, tables.objects, preds


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A fresh tiny repository (tests/tiny_repo.py), nothing run yet: one per test module."""
    return make_repo(tmp_path_factory.mktemp("tiny") / "repo")

