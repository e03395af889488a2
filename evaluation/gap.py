"""A detector-centric domain gap: Fréchet distance and KID between two sets of frames, measured
in the feature space of the detector itself rather than ImageNet Inception's.

Features: the SPPF output of a YOLO checkpoint (the end of the backbone, before the neck mixes
in the finer scales), averaged over all positions: one vector of the SPPF's channel count per
frame (256 for yolov5n / yolov8n). Optionally a torchvision classifier's pooled features from a
local weights file (nothing is downloaded). Frames are resized to `imgsz` wide, the height kept
in proportion and rounded to the stride (32): global pooling needs no square letterbox, whose
grey padding would otherwise be part of every feature.

    feats = extract_features(load_extractor("best.pt"), paths, GapConfig())
    fd = frechet_distance(*gaussian(feats_a), *gaussian(feats_b))
    kid, kid_sd = kernel_inception_distance(feats_a, feats_b)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from common.errors import MissingInputError
from common.files import atomic_torch_save, file_sha256
from common.runtime import resolve_device
from evaluation.config import STRIDE, GapConfig
from evaluation.errors import EvalInputError

KID_SEED = 0  # of KID's subset draws: same inputs, same number


# --------------------------------------------------------------------------- the two scores


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (ddof=1) covariance of (n, d) features, in float64."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise EvalInputError(f"need at least 2 feature vectors, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                     cov2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein²) distance of N(mu1, cov1) and N(mu2, cov2):
    |mu1 − mu2|² + tr(cov1 + cov2 − 2 (cov1 cov2)^½).

    tr (cov1 cov2)^½ is computed as the sum of the square roots of the eigenvalues of the
    symmetric PSD matrix S cov2 S, S = cov1^½ (same spectrum as cov1 cov2): no complex sqrtm,
    and exact for the singular covariances of fewer frames than feature dimensions.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * cross)
    return max(value, 0.0)  # >= 0 in exact arithmetic; rounding may leave -1e-13


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's kernel k(x, y) = (x·y / d + 1)³."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased estimator of MMD² with the polynomial kernel (Bińkowski et al. 2018):
    mean of k(x_i, x_j) over i ≠ j, plus the same for y, minus twice the mean of k(x_i, y_j)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise EvalInputError(f"KID needs at least 2 frames per set, got {m} and {n}")
    kxx, kyy = polynomial_kernel(x, x), polynomial_kernel(y, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * polynomial_kernel(x, y).mean())


def kernel_inception_distance(x: np.ndarray, y: np.ndarray, subset: int = 100, subsets: int = 50,
                              seed: int = KID_SEED) -> tuple[float, float | None]:
    """KID (mean, sd) over `subsets` random subsets of `subset` frames per set; when neither
    set is larger than `subset`, the one estimate on the full sets (sd None)."""
    if len(x) <= subset and len(y) <= subset:
        return mmd2_unbiased(x, y), None
    size = min(subset, len(x), len(y))
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(x[rng.choice(len(x), size, replace=False)],
                            y[rng.choice(len(y), size, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values, ddof=1)) if subsets > 1 else None


def gap_scores(a: np.ndarray, b: np.ndarray, cfg: GapConfig) -> dict[str, float | None]:
    """Both scores between two feature sets."""
    kid, kid_sd = kernel_inception_distance(a, b, cfg.kid_subset, cfg.kid_subsets)
    return {"fd": frechet_distance(*gaussian(a), *gaussian(b)), "kid": kid, "kid_sd": kid_sd}


def gap_warnings(extractor: Extractor, frames: dict[str, int]) -> list[str]:
    """What makes the two scores say little, one line each: an untrained extractor, and a set
    (frames: its name -> frames read) too small for FD."""
    warnings = []
    if not extractor.trained:
        warnings.append(f"{extractor.meta['model']} is an architecture yaml, not a trained "
                        "checkpoint: its freshly initialised layers give features of ~1e-8 "
                        "whatever the frame, so FD and KID come out ~0 and say nothing; give a "
                        "trained detector, e.g. outputs/detector/model/best.pt")
    # FD fits a Gaussian to each set's d features (d = the extractor's channels: 256 for the
    # yolov5n / yolov8n SPPF). From n frames the covariance has rank n - 1 at most, so up to d
    # frames it is singular and FD measures which frames were drawn, not the two domains; above
    # d it still needs many more frames than d to settle (its bias shrinks as 1/n), so compare
    # FDs only between sets of equal sizes. d is the count below which it means nothing.
    short = {name: n for name, n in frames.items() if n <= extractor.channels}
    if short:
        counts = ", ".join(f"{name} {n}" for name, n in short.items())
        warnings.append(f"FD needs more frames per set than the {extractor.channels} feature "
                        f"dimensions, got {counts}: the covariance is singular and FD not "
                        "meaningful (KID is unbiased at any count, but noisy with few frames)")
    return warnings


def share_closed(source: float, translated: float, floor: float) -> float | None:
    """(source − translated) / (source − floor): 0 = no closer than the untranslated frames,
    1 = as close as the target's own frames; None when the source is not farther than the floor
    (nothing to close)."""
    span = source - floor
    return None if span <= 0 else float((source - translated) / span)


# --------------------------------------------------------------------------- features


@dataclass
class Extractor:
    """A frozen network that maps a (B, 3, H, W) float batch in [0, 1] to (B, C) features."""

    name: str  # what the features are, for the output JSON
    forward: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device
    checkpoint_sha256: str = ""
    channels: int = 0
    meta: dict = field(default_factory=dict)
    trained: bool = True  # False: built from an architecture yaml, its layers freshly initialised


# The one fixed reference extractor (the gap stage's default, the translators' target score):
# a yolov5n built from its yaml with seeded He-normal conv weights. Nothing to download or train,
# the same features in every process, for every arm and seed of a study; calibrated on the sample
# world (tests/test_gap_calibration.py).
REFERENCE_ARCH = "yolov5n.yaml"
REFERENCE_SEED = 0


def seeded_checkpoint(path: Path, arch: str = REFERENCE_ARCH, seed: int = REFERENCE_SEED) -> Path:
    """A YOLO checkpoint built from an architecture yaml (nothing downloaded) with seeded
    He-normal conv weights: a freshly built YOLO's SPPF output is ~1e-9 everywhere, too flat to
    tell frames apart. The same path, arch and seed give the same bytes (no save date: DVC's hash
    of the file, and the gap.json that records it, stay the same run after run). Do not name it
    like a hub checkpoint (`yolov5n.pt`): ultralytics would try to download that name."""
    from detection.env import configure_ultralytics

    configure_ultralytics()
    from ultralytics import YOLO

    yolo = YOLO(arch)
    torch.manual_seed(seed)
    for module in yolo.model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    yolo.save(path)
    # read back the way ultralytics reads its checkpoints (they pickle the model object itself)
    from ultralytics.nn.tasks import torch_safe_load

    checkpoint, _ = torch_safe_load(str(path))
    checkpoint["date"] = None  # ultralytics stamps the time of saving
    atomic_torch_save(checkpoint, Path(path))
    return path


def load_extractor(model: Path, device: str = "auto", hint: str = "") -> Extractor:
    """The SPPF features of a YOLO checkpoint (best.pt, last.pt or a model yaml)."""
    model = Path(model)
    if model.suffix != ".yaml" and not model.is_file():
        raise MissingInputError(f"put a YOLO checkpoint at {model}" + (f" or {hint}" if hint
                                                                        else ""))
    from detection.env import configure_ultralytics

    configure_ultralytics()
    from ultralytics import YOLO
    from ultralytics.nn.modules.block import SPPF

    net = YOLO(str(model), task="detect").model.float().eval()
    layers = list(net.model)
    ends = [i for i, layer in enumerate(layers) if isinstance(layer, SPPF)]
    if not ends:
        raise EvalInputError(f"{model}: no SPPF layer in this model; give a YOLO detector")
    end = ends[0]
    dev = resolve_device(device, "gap.device")
    net.to(dev)
    keep = set(net.save)

    def forward(batch: torch.Tensor) -> torch.Tensor:
        # ultralytics' routing: a layer reads the previous output (f == -1) or earlier saved
        # ones (f an index or a list); outputs a later layer needs are kept in `saved`
        saved: list[torch.Tensor | None] = []
        x = batch
        for layer in layers[:end + 1]:
            if layer.f != -1:
                x = saved[layer.f] if isinstance(layer.f, int) else [
                    x if j == -1 else saved[j] for j in layer.f]
            x = layer(x)
            saved.append(x if layer.i in keep else None)
        return x.mean(dim=(2, 3))

    with torch.inference_mode():
        channels = int(forward(torch.zeros(1, 3, STRIDE * 2, STRIDE * 2, device=dev)).shape[1])
    return Extractor(f"YOLO SPPF (layer {end}, {channels} channels, global mean pool)", forward,
                     dev, file_sha256(model) if model.is_file() else "", channels,
                     {"model": str(model), "layer": end}, trained=model.suffix != ".yaml")


def load_torchvision_extractor(arch: str, weights: Path, device: str = "auto") -> Extractor:
    """A torchvision classifier's globally pooled features (its head removed), from a local
    state-dict file; ImageNet normalisation of the input."""
    import torchvision

    weights = Path(weights)
    if not weights.is_file():
        raise MissingInputError(f"torchvision weights not found: {weights}")
    try:
        net = torchvision.models.get_model(arch, weights=None)
    except ValueError as err:
        raise EvalInputError(f"--backbone {arch}: {err}") from None
    try:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as err:  # torch.load raises whatever its unpickler meets (struct.error, ...)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise EvalInputError(f"{weights}: not a {arch} state dict ({first})") from None
    for head in ("fc", "classifier", "head", "heads"):
        if hasattr(net, head):
            setattr(net, head, torch.nn.Identity())
            break
    dev = resolve_device(device, "gap.device")
    net = net.float().eval().to(dev)
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return net((batch - mean) / std).flatten(1)

    with torch.inference_mode():
        channels = int(forward(torch.zeros(1, 3, 64, 64, device=dev)).shape[1])
    return Extractor(f"torchvision {arch} (head removed, {channels} features)", forward, dev,
                     file_sha256(weights), channels, {"model": str(weights), "arch": arch})


def input_size(width: int, height: int, imgsz: int) -> tuple[int, int]:
    """(W, H) a frame is resized to: `imgsz` wide, the height in proportion, to the stride."""
    return imgsz, max(STRIDE, int(round(height * imgsz / width / STRIDE)) * STRIDE)


def centre_crop(image: np.ndarray, aspect: float) -> np.ndarray:
    """The centred part of `image` whose height / width is `aspect` (0: the whole image)."""
    if not aspect:
        return image
    h, w = image.shape[:2]
    if h > w * aspect:  # too tall: a horizontal band through the middle
        keep = max(1, int(round(w * aspect)))
        return image[(h - keep) // 2:(h - keep) // 2 + keep]
    keep = max(1, int(round(h / aspect)))  # too wide: a vertical band
    return image[:, (w - keep) // 2:(w - keep) // 2 + keep]


def prepare(image: np.ndarray, imgsz: int, crop_aspect: float = 0.0) -> np.ndarray:
    """An H×W×3 frame as the extractor sees it: centre-cropped to `crop_aspect`, resized to
    `imgsz` wide (the channel order is kept: each channel is cropped and resized alike)."""
    image = centre_crop(image, crop_aspect)
    size = input_size(image.shape[1], image.shape[0], imgsz)
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def _load(path: Path, imgsz: int, crop_aspect: float = 0.0) -> np.ndarray | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else prepare(bgr[:, :, ::-1], imgsz, crop_aspect)


@dataclass
class Features:
    values: np.ndarray  # (n read, C) float64, in input order
    paths: list[Path]  # the frames read
    skipped: list[str]  # frames that are missing or cannot be decoded, named


def extract_features(extractor: Extractor, paths: list[Path], cfg: GapConfig,
                     label: str = "features", progress: bool = True) -> Features:
    """Pooled features of every readable frame (a missing or undecodable one is skipped and
    named). Frames are decoded in two threads, a window of four batches at a time."""
    def decoded(pool: ThreadPoolExecutor) -> Iterator[np.ndarray | None]:
        # a window of a few batches at a time: memory stays bounded whatever the frame count
        window = 4 * cfg.batch
        for start in range(0, len(paths), window):
            yield from pool.map(lambda p: _load(p, cfg.imgsz, cfg.crop_aspect),
                                paths[start:start + window])

    with ThreadPoolExecutor(2) as pool, tqdm(total=len(paths), desc=label, unit="img",
                                             disable=not progress) as bar:
        rows = _pooled(extractor, decoded(pool), cfg.batch, bar.update)
    order = sorted(rows)
    values = np.stack([rows[i] for i in order]) if order else np.zeros((0, extractor.channels))
    skipped = [str(path) for i, path in enumerate(paths) if i not in rows]
    return Features(values, [paths[i] for i in order], skipped)


def frame_features(extractor: Extractor, frames: list[np.ndarray], cfg: GapConfig) -> np.ndarray:
    """(n, C) float64 features of decoded H×W×3 uint8 RGB frames, prepared as files are."""
    prepared = (prepare(frame, cfg.imgsz, cfg.crop_aspect) for frame in frames)
    rows = _pooled(extractor, prepared, cfg.batch, lambda _: None)
    return np.stack([rows[i] for i in range(len(frames))])


def _pooled(extractor: Extractor, images: Iterator[np.ndarray | None], batch: int,
            done: Callable[[int], object]) -> dict[int, np.ndarray]:
    """Index -> feature of each prepared RGB image (None: skipped). A batch holds images of one
    size, so an image's feature does not depend on its neighbours' sizes."""
    rows: dict[int, np.ndarray] = {}
    pending: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}

    def flush(shape: tuple[int, int]) -> None:
        items = pending.pop(shape)
        stacked = torch.from_numpy(np.stack([img for _, img in items])).permute(0, 3, 1, 2)
        with torch.inference_mode():
            out = extractor.forward(stacked.to(extractor.device).float().div_(255.0))
        for (index, _), row in zip(items, out.double().cpu().numpy(), strict=True):
            rows[index] = row

    for index, image in enumerate(images):
        done(1)
        if image is None:
            continue
        shape = image.shape[:2]
        pending.setdefault(shape, []).append((index, image))
        if len(pending[shape]) == batch:
            flush(shape)
    for shape in list(pending):
        flush(shape)
    return rows


def evenly_spaced(paths: list[Path], limit: int) -> list[Path]:
    """At most `limit` of `paths` (0 = all), evenly spaced: deterministic, covers every scene."""
    if not limit or len(paths) <= limit:
        return list(paths)
    picks = np.linspace(0, len(paths) - 1, num=limit).round().astype(int)
    return [paths[i] for i in sorted(set(picks.tolist()))]


def frame_paths(source: Path) -> list[Path]:
    """The frames of a directory of images (recursively, sorted) or of a manifest directory
    (images.parquet, as ingest and translate write it; its rows in order)."""
    source = Path(source)
    if (source / "images.parquet").is_file():
        from data import read_manifest  # only here: `evaluation` does not need the data package

        return [Path(p) for p in read_manifest(source).images["path"]]
    if not source.is_dir():
        raise MissingInputError(f"{source}: not a directory of images or a manifest")
    suffixes = (".png", ".jpg", ".jpeg")
    paths = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not paths:
        raise MissingInputError(f"{source}: no .png/.jpg/.jpeg images")
    return paths


# --------------------------------------------------------------------------- one weather's gap

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


def weather_gap(sets: dict[str, Features], cfg: GapConfig, edge_similarity: float | None
                ) -> dict:
    """gap.json's entry of one weather, from the features of the target and the three others
    (COMPARED), next to the translation's edge similarity (a translator that closes the gap by
    moving content is no good)."""
    entry: dict = {"frames": {name: len(f.paths) for name, f in sets.items()},
                   "skipped": {name: len(f.skipped) for name, f in sets.items() if f.skipped},
                   "edge_similarity": edge_similarity}
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


def gap_summary(entry: dict) -> str:
    """One weather's entry in one line."""
    def share(value: float | None) -> str:
        return "–" if value is None or not np.isfinite(value) else f"{value:.0%}"

    fd = entry["fd"]
    return (f"FD source {fd['source']:.4g}, translated {fd['translated']:.4g}, floor "
            f"{fd['floor']:.4g}: {share(entry['fd_closed'])} of the gap closed "
            f"(KID: {share(entry['kid_closed'])}); edge similarity {entry['edge_similarity']}")
