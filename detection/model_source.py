"""What `detector.model` names: an architecture yaml (train from scratch) or a local checkpoint
(fine-tune), checked before any training starts.

Nothing here downloads. ultralytics treats a missing `yolov5su.pt` as a hub name and fetches it
from GitHub; we stop first with one line saying where to put the file. Checkpoints are read with
ultralytics' `torch_safe_load` under ULTRALYTICS_SAFE_LOAD=1 (set by `configure_ultralytics`):
torch.load(weights_only=True) with an allow-list of model classes, so a .pt cannot run code.

The largest stride is read from the model itself (a P6 model such as yolov5n6.yaml has stride
64, the P5 ones 32): `imgsz` must be a multiple of it, or ultralytics silently rounds it up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from common.config import ParamError
from common.errors import MissingInputError, UserError
from detection.config import PRETRAIN_CHECKPOINT
from detection.env import configure_ultralytics

log = logging.getLogger(__name__)

# Where the train_detector stage expects checkpoints: dvc.yaml lists this folder as a dep, so a
# changed checkpoint re-trains and the same bytes do not (see pretrained/README.md).
PRETRAINED_DIR = Path("pretrained")
# ... and stage pretrain_detector's output folder, the other checkpoint dep of train_detector
CHECKPOINT_DIRS = (PRETRAINED_DIR, Path(PRETRAIN_CHECKPOINT).parent)


@dataclass(frozen=True)
class ModelSource:
    name: str  # detector.model as given
    checkpoint: Path | None  # the .pt file when fine-tuning; None for an architecture yaml
    stride: int  # the model's largest stride: imgsz must be a multiple of it
    names: tuple[str, ...]  # the checkpoint's class names (empty for a yaml)
    layers: int  # modules in the model's list, the head last: what `detector.freeze` counts

    @property
    def is_checkpoint(self) -> bool:
        return self.checkpoint is not None


def is_checkpoint_name(model: str) -> bool:
    return model.lower().endswith(".pt")


def inspect_model(model: str) -> ModelSource:
    """Resolve `detector.model` without training or downloading; UserError (one line) if it is
    a hub name not on disk, a missing file, an unreadable or non-detection checkpoint, or a yaml
    ultralytics cannot build."""
    if is_checkpoint_name(model):
        return _inspect_checkpoint(model)
    return _inspect_yaml(model)


def check_detector_model(model: str, imgsz: int, pretrain_model: str | None = None, *,
                         freeze: int = 0) -> None:
    """`detector.model` against what it names: a checkpoint must be on disk under pretrained/ (the
    folder dvc.yaml tracks for train_detector, so a changed checkpoint re-trains) or be stage
    pretrain_detector's, and readable, a yaml buildable, `imgsz` a multiple of the model's
    largest stride and `freeze` short of its head, both read from the model. The stages that
    train or predict with the model run this first; the others never import ultralytics
    (pipeline/params.py loads params without it). Before pretrain_detector has run (the study,
    checking ahead of its experiments), its checkpoint is checked through `pretrain_model`, the
    architecture it will be trained from."""
    if is_checkpoint_name(model) and not any(Path(model).resolve().is_relative_to(d.resolve())
                                             for d in CHECKPOINT_DIRS):
        raise ParamError(f"detector.model: {model} is outside {PRETRAINED_DIR}/, the folder "
                         f"dvc.yaml tracks as train_detector's dep; move it there (e.g. "
                         f"{PRETRAINED_DIR / Path(model).name}) so a changed checkpoint re-trains")
    if Path(model) == Path(PRETRAIN_CHECKPOINT) and not Path(model).exists() and pretrain_model:
        model = pretrain_model
    configure_ultralytics()  # before inspect_model imports ultralytics (detection/env.py)
    source = inspect_model(model)
    check_imgsz(imgsz, source)
    check_freeze(freeze, source)


def check_imgsz(imgsz: int, source: ModelSource) -> None:
    """imgsz must be a multiple of the model's largest stride (read from the model)."""
    if imgsz % source.stride:
        raise UserError(f"detector.imgsz: must be a multiple of {source.stride} (the largest "
                        f"stride of {source.name}), got {imgsz}")


def check_freeze(freeze: int, source: ModelSource) -> None:
    """`freeze` must leave the head to train (ultralytics would freeze every layer and go on)."""
    if freeze >= source.layers:
        raise ParamError(f"detector.freeze: {freeze} would freeze all {source.layers} layers of "
                         f"{source.name}, the head too; at most {source.layers - 1} (YOLOv5's "
                         "backbone is the first 10)")


def note_reheading(source: ModelSource, names: list[str]) -> None:
    """The one line saying that fine-tuning replaces the checkpoint's class head (ultralytics
    keeps every layer whose shape fits, so only the head's class outputs start afresh)."""
    if list(source.names) != names:
        shown = ", ".join(source.names[:5]) + (", ..." if len(source.names) > 5 else "")
        log.warning("fine-tuning %s: its %d classes (%s) are replaced by a new head for the "
                    "dataset's %d (%s); the other layers keep their weights", source.name,
                    len(source.names), shown, len(names), ", ".join(names))


def _inspect_checkpoint(model: str) -> ModelSource:
    path = Path(model)
    if not path.is_file():
        if path.parent == Path("."):  # a bare name: ultralytics would download it
            raise MissingInputError(
                f"detector.model: {model} is not on disk and nothing is downloaded at run time; "
                f"put the checkpoint at {PRETRAINED_DIR / path.name} and set detector.model: "
                f"{PRETRAINED_DIR / path.name}")
        raise MissingInputError(f"detector.model: checkpoint not found: {model} (nothing is "
                                "downloaded at run time: put the file there; "
                                f"{PRETRAINED_DIR}/README.md says where to get one)")
    from ultralytics.nn.tasks import DetectionModel, torch_safe_load

    try:
        ckpt, _ = torch_safe_load(str(path))
    except Exception as error:  # ultralytics' messages are multi-line: keep the first line
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"detector.model: {model} is not a readable YOLO checkpoint "
                        f"({first.removeprefix('ERROR ❌️ ')})") from None
    net = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    # SegmentationModel, PoseModel... subclass DetectionModel: only a plain detector fits here
    if type(net) is not DetectionModel:
        found = type(net).__name__ if net is not None else "no model"
        raise UserError(f"detector.model: {model} is not a YOLO detection checkpoint "
                        f"(holds {found}, expected an ultralytics DetectionModel)")
    names = net.names.values() if isinstance(net.names, dict) else net.names
    return ModelSource(model, path, int(net.stride.max()), tuple(str(n) for n in names),
                       len(net.model))


def _inspect_yaml(model: str) -> ModelSource:
    """Build the architecture on the CPU (a fraction of a second for the n/s scales) to read its
    strides, exactly as ultralytics will when training."""
    from ultralytics.nn.tasks import DetectionModel

    try:
        net = DetectionModel(model, verbose=False)  # (its own nc: no "Overriding" line)
    except FileNotFoundError:
        raise MissingInputError(f"detector.model: architecture yaml not found: {model} (neither "
                                "a file nor one of ultralytics' built-in model yamls)") from None
    except Exception as error:
        raise UserError(f"detector.model: cannot build {model} "
                        f"({type(error).__name__}: {error})") from None
    return ModelSource(model, None, int(net.stride.max()), (), len(net.model))
