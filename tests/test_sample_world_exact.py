"""The sample world is the same bytes on every CPU, so runs on different machines (and on
different training seeds) are scored on the same images.

A small world is written in fresh interpreters: as is, with numpy's SIMD dispatch cut back (to
what an AVX2 CPU has, and to its baseline), with OpenCV's optimised code (SIMD dispatch, IPP,
libjpeg-turbo's SIMD) switched off, and with one and two threads. All must be byte-identical, and
their hash is pinned: a change of the world is a named failure, never a silent one. Each child
reports the switches in effect, so a switch that is silently ignored (numpy 2.4 warns about, and
then ignores, the pre-2.4 feature names AVX512F / AVX2 / FMA3) fails instead of passing vacuously.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

from data.sample import exact

REPO = Path(__file__).resolve().parents[1]

CONFIG = {"kitti_frames": 6, "vkitti2_scenes": 1, "vkitti2_frames_per_scene": 3,
          "bdd_train_frames_per_weather": 1, "bdd_val_frames_per_weather": 2, "width": 320,
          "seed": 0}
# sha256 over (relative path, size, bytes) of the world's files in sorted order. Update it only
# when the world is meant to change (and say so in the commit), never to make this test pass.
WORLD_SHA256 = "706d4623b3f972a3e2cdc759078d587edb77357a65cd0f8860db435788dc1d52"

CHILD = r"""
import json, sys
from pathlib import Path
import cv2
settings = json.loads(sys.argv[2])
if "cv2_threads" in settings:
    cv2.setNumThreads(settings["cv2_threads"])
if not settings.get("cv2_optimized", True):
    cv2.setUseOptimized(False)
    cv2.ipp.setUseIPP(False)
import hashlib
import numpy as np
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
from data.sample import SampleConfig, datasets, looks, write_sample_world
floats = hashlib.sha256()  # every frame's float pixels before they are rounded to uint8
def hashing(quantise):
    def wrapped(img, *args, **kwargs):
        floats.update(np.ascontiguousarray(img).tobytes())
        return quantise(img, *args, **kwargs)
    return wrapped
looks.sensor = hashing(looks.sensor)
datasets.sim_variation = hashing(datasets.sim_variation)
write_sample_world(Path(sys.argv[1]), SampleConfig(**settings["config"]))
print(json.dumps({"numpy_simd": [f for f in __cpu_dispatch__ if __cpu_features__.get(f)],
                  "cv2_optimized": cv2.useOptimized(), "cv2_ipp": cv2.ipp.useIPP(),
                  "cv2_threads": cv2.getNumThreads(), "floats": floats.hexdigest()}))
"""

THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def numpy_simd() -> list[str]:
    """numpy's dispatched SIMD targets that this CPU runs (e.g. X86_V3, X86_V4, AVX512_ICL)."""
    return [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]


def write_world(root: Path, env: dict[str, str], **settings) -> dict:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("NPY_DISABLE_CPU_FEATURES", "JSIMD_FORCENONE", *THREADS)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root),
                           json.dumps({"config": CONFIG, **settings})],
                          cwd=REPO, env={**environment, **env}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def world_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((p for p in root.rglob("*") if p.is_file()),
                    key=lambda p: p.relative_to(root).as_posix()):
        data = p.read_bytes()
        h.update(f"{p.relative_to(root).as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def test_the_world_is_the_same_bytes_whatever_the_simd_or_threads(tmp_path):
    found = numpy_simd()
    above_avx2 = [f for f in found if f not in ("X86_V2", "X86_V3")]
    variants = {
        "as is": ({}, {}),
        "numpy at its baseline (no dispatched SIMD)": (
            {"NPY_DISABLE_CPU_FEATURES": " ".join(found)}, {}),
        "OpenCV without SIMD dispatch, IPP or libjpeg-turbo SIMD": (
            {"JSIMD_FORCENONE": "1"}, {"cv2_optimized": False}),
        "one thread": (dict.fromkeys(THREADS, "1"), {"cv2_threads": 1}),
        "two threads": (dict.fromkeys(THREADS, "2"), {"cv2_threads": 2}),
    }
    if above_avx2:  # an AVX-512 CPU: also as numpy runs on an AVX2 one (the AMD EPYC of the note)
        variants["numpy as on an AVX2 CPU"] = ({"NPY_DISABLE_CPU_FEATURES": " ".join(above_avx2)},
                                               {})
    worlds, reported = {}, {}
    for index, (name, (env, settings)) in enumerate(variants.items()):
        worlds[name] = tmp_path / f"world{index}"
        reported[name] = write_world(worlds[name], env, **settings)

    # the switches took effect (an unknown NPY_DISABLE_CPU_FEATURES name is only a warning)
    assert reported["numpy at its baseline (no dispatched SIMD)"]["numpy_simd"] == []
    assert reported["as is"]["numpy_simd"] == found
    if above_avx2:
        assert [f for f in reported["numpy as on an AVX2 CPU"]["numpy_simd"]
                if f not in ("X86_V2", "X86_V3")] == []
    opencv = reported["OpenCV without SIMD dispatch, IPP or libjpeg-turbo SIMD"]
    assert not opencv["cv2_optimized"] and not opencv["cv2_ipp"]
    assert reported["one thread"]["cv2_threads"] == 1
    assert reported["two threads"]["cv2_threads"] == 2

    # the float frames before rounding to uint8 too: rounding hides most last-bit differences
    floats = {name: r["floats"] for name, r in reported.items()}
    assert len(set(floats.values())) == 1, f"float pixels differ between the variants: {floats}"
    reference = digests(worlds["as is"])
    # 6 + 6 KITTI, 6 x 3 + 6 x 2 vKITTI2, 4 + 8 + 2 BDD100K, 3 clone frames x 3 ideal renders
    assert len(reference) == 65
    for name, root in worlds.items():
        files = digests(root)
        differ = sorted(p for p in reference.keys() | files.keys()
                        if reference.get(p) != files.get(p))
        assert not differ, f"{name}: {len(differ)} of {len(reference)} files differ: {differ}"

    assert world_hash(worlds["as is"]) == WORLD_SHA256, (
        "the sample world changed: its hash is no longer the pinned WORLD_SHA256 in "
        "tests/test_sample_world_exact.py. Update the constant only if the world is meant to "
        "change (a change to data/sample/), never to make this pass; every figure made on the "
        "old world (README, dvc.lock) changes with it.")


def test_the_ideal_renders_leave_the_datasets_unchanged(tmp_path):
    """The ideal renders draw from their own seed stream: vKITTI2 written with them has the same
    bytes as vKITTI2 written without them."""
    from data.sample import SampleConfig, write_vkitti2

    cfg = SampleConfig(**CONFIG)
    write_vkitti2(tmp_path / "with", cfg, ideal_root=tmp_path / "ideal")
    write_vkitti2(tmp_path / "without", cfg)
    assert world_hash(tmp_path / "with") == world_hash(tmp_path / "without")
    renders = sorted(p.relative_to(tmp_path / "ideal").as_posix()
                     for p in (tmp_path / "ideal").rglob("*.jpg"))
    clones = sorted((tmp_path / "with").rglob("clone/frames/rgb/Camera_0/*.jpg"))
    assert len(renders) == 3 * len(clones) > 0  # one per clone frame and weather
    assert renders[0] == "fog/Scene01/Camera_0/rgb_00000.jpg"


def test_the_exact_filters_follow_opencvs_definitions():
    """Same kernels, borders and coordinate mapping as the OpenCV calls they replace: they differ
    from them by float32 rounding only (so the world looks as it did)."""
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (45, 80, 3)).astype(np.float32)
    for sigma in (0.45, 0.55, 0.75, 2.4, 2.5):
        assert np.abs(exact.gaussian_blur(image, sigma)
                      - cv2.GaussianBlur(image, (0, 0), sigma)).max() < 1e-6, sigma
    assert np.abs(exact.box_blur_rows3(image) - cv2.blur(image, (1, 3))).max() < 1e-6
    assert np.abs(exact.downsample2(image[:44])
                  - cv2.resize(image[:44], (40, 22), interpolation=cv2.INTER_AREA)).max() < 1e-6
    small = rng.standard_normal((7, 12)).astype(np.float32)
    assert np.abs(exact.resize_cubic(small, 80, 45)
                  - cv2.resize(small, (80, 45), interpolation=cv2.INTER_CUBIC)).max() < 1e-5
    x = np.linspace(-120, 5, 2001)
    assert np.abs(exact.exp(x) / np.exp(x) - 1).max() < 1e-15
    assert exact.exp(np.array([-800.0]))[0] == 0.0
    assert np.abs(exact.geomspace(0.5, 3000.0, 1024) / np.geomspace(0.5, 3000.0, 1024)
                  - 1).max() < 1e-14


def test_the_sparse_blur_is_the_full_blur_bit_for_bit():
    rng = np.random.default_rng(1)
    for trial in range(60):
        image = np.zeros((60, 90), np.float32)
        r, c = int(rng.integers(0, 60)), int(rng.integers(0, 90))
        image[r:r + int(rng.integers(1, 20)), c:c + int(rng.integers(1, 30))] = rng.uniform(0, 1)
        sigma = (0.5, 2.4)[trial % 2]
        assert np.array_equal(exact.gaussian_blur_sparse(image, sigma),
                              exact.gaussian_blur(image, sigma)), trial
    assert not exact.gaussian_blur_sparse(np.zeros((5, 5), np.float32), 2.4).any()
