"""Offline, side-effect-free setup of ultralytics.

ORDERING CONSTRAINT: `configure_ultralytics()` should run before the first `import ultralytics`
in the process. ultralytics reads YOLO_CONFIG_DIR, YOLO_OFFLINE, YOLO_AUTOINSTALL and
ULTRALYTICS_SAFE_LOAD once, at import time (ultralytics/utils/__init__.py), and keeps its
settings file in that config dir. That is why train.py and predict.py import ultralytics only
inside their functions, after calling this. If someone imported ultralytics first, this warns
and applies the same choices to the already-imported modules (in memory only: it never rewrites
a settings file it does not own), so detection still runs offline.

What it prevents, each of which would otherwise happen on a machine without network:
- font downloads: `check_det_dataset` and every plot call `check_font("Arial.ttf")`, which
  HEADs and downloads github assets when the file is missing. We put matplotlib's DejaVuSans
  there under the names ultralytics asks for, so plots work and nothing is fetched.
- pip auto-install of "missing" requirements (YOLO_AUTOINSTALL=False).
- pip update checks and analytics (YOLO_OFFLINE=1 makes ONLINE False; settings sync=False).
- ultralytics' own DVC callback, which rewrites dvc.yaml and logs with its own DVCLive
  (settings dvc=False), and the other experiment-tracker callbacks.
- unpickling arbitrary code: ULTRALYTICS_SAFE_LOAD=1 loads checkpoints with
  torch.load(weights_only=True) and an allow-list of ultralytics/torch model classes.
- training on one core fewer than the machine has: ultralytics sets torch's CPU threads to
  cpu_count - 1 whenever it selects a CPU device, which is a single thread on a 2-core laptop or
  CI runner. We let it use every core this process may run on (or $OMP_NUM_THREADS if the user
  set it): the demo detector trains ~30 % faster on 2 cores, with bit-identical weights run to run.
Not covered: amp=True on CUDA downloads weights for its AMP check; train.py avoids it.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from common.files import atomic_path

log = logging.getLogger(__name__)

# Settings that switch off every integration that logs elsewhere or talks to the network.
_OFFLINE_SETTINGS = {
    "sync": False,
    "dvc": False,
    "mlflow": False,
    "wandb": False,
    "comet": False,
    "clearml": False,
    "raytune": False,
    "tensorboard": False,
}
# The fonts ultralytics asks for (ascii / non-ascii class names), served by a local font.
_FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")

_configured_dir: Path | None = None


def default_config_dir() -> Path:
    """`$YOLO_CONFIG_DIR` if the user set one, else `.yolo` in the working directory (the repo
    root when DVC runs a stage; git-ignored)."""
    return Path(os.environ.get("YOLO_CONFIG_DIR") or Path.cwd() / ".yolo")


def configure_ultralytics(config_dir: Path | None = None) -> Path:
    """Make ultralytics offline and quiet towards the outside world; returns its config dir.

    Idempotent: later calls keep the first call's directory (ultralytics cannot switch it).
    """
    global _configured_dir
    config_dir = Path(config_dir or default_config_dir()).resolve()
    if _configured_dir is not None:
        if config_dir != _configured_dir:
            log.warning("ultralytics already configured with %s; keeping it (it is read once, at "
                        "import) and ignoring %s", _configured_dir, config_dir)
        return _configured_dir

    cpu_threads = _cpu_threads()  # before ultralytics' import sets OMP_NUM_THREADS=1
    imported_before = "ultralytics" in sys.modules
    if imported_before:
        log.warning("ultralytics was imported before detection.configure_ultralytics(); "
                    "applying the offline settings to the imported modules instead")
    else:
        (config_dir / "Ultralytics").mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
        os.environ["YOLO_OFFLINE"] = "1"
        os.environ["YOLO_AUTOINSTALL"] = "False"
        os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"

    import ultralytics.utils as yolo_utils
    from ultralytics.nn import tasks
    from ultralytics.utils import checks, torch_utils

    # What the env vars above give when read at import; set again for the imported-before case.
    yolo_utils.ONLINE = checks.ONLINE = False
    yolo_utils.AUTOINSTALL = checks.AUTOINSTALL = False
    yolo_utils.SAFE_LOAD = tasks.SAFE_LOAD = True
    torch_utils.NUM_THREADS = cpu_threads  # what select_device gives torch.set_num_threads

    user_dir = Path(yolo_utils.USER_CONFIG_DIR).resolve()  # <YOLO_CONFIG_DIR>/Ultralytics
    _install_fonts(user_dir)
    settings = {**_OFFLINE_SETTINGS, "weights_dir": str(user_dir / "weights"),
                "runs_dir": str(user_dir / "runs")}
    if user_dir == config_dir / "Ultralytics":
        yolo_utils.SETTINGS.update(settings)  # persisted in our own settings.json
    else:  # someone else's settings file: change this process only
        dict.update(yolo_utils.SETTINGS, settings)
    _configured_dir = user_dir.parent
    return _configured_dir


def _cpu_threads() -> int:
    """$OMP_NUM_THREADS if set (and not ultralytics' own "1"), else the cores we may run on."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    # isascii too: "²".isdigit() is True, but int("²") raises
    if "ultralytics" not in sys.modules and threads.isascii() and threads.isdigit():
        return max(1, int(threads))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _install_fonts(user_dir: Path) -> None:
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in _FONT_NAMES:
        target = user_dir / name
        if target.exists():
            continue
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
