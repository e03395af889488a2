"""The resumable training loop of the GAN translators (CycleGAN, CUT), generic over their model.

A model (translators/cyclegan/model.py, translators/cut/model.py) owns its nets, losses,
optimisers and schedules; this loop owns the data plan, checkpoints, RNG states, DDP, logging,
sample grids and the progress bar (the `TrainingModel` protocol below is what it calls).

Built to survive days of training and a `kill -9`:
- a checkpoint every `checkpoint_every` iterations and at every epoch end, written atomically,
  holds the model's state (nets, optimisers, lr schedules), each rank's own random state (image
  pools, patch samplers) and RNG states (torch, numpy, random, CUDA), the position (epoch,
  iteration in epoch) and the per-epoch loss history;
- a restart with the same data and learning params resumes from it (at most
  `checkpoint_every` iterations lost) and, on CPU, ends with the same weights as an
  uninterrupted run, because each epoch's data plan is a pure function of (seed, epoch);
- DVCLive curves (per-epoch mean losses, lr, the target score) and sample grids are rebuilt
  from that history on every start, so a resumed run never logs an epoch twice or loses one;
- given a `Scorer`, every `score_every` epochs the generator is scored against the target and
  the best epoch's weights kept (translators/selection.py): `select` picks what is published.

Multi-GPU: launch through torchrun (see `python -m translators train --help`; the
translator_train stage does so itself for a list of GPUs); each rank trains on its share of every
epoch's plan, DDP averages the gradients, rank 0 logs and saves.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from common.files import atomic_torch_save, atomic_write_json
from common.runtime import resolve_device
from translators.base import Scorer
from translators.cyclegan.config import GANConfig
from translators.cyclegan.data import (
    Sample,
    UnalignedDataset,
    epoch_plan,
    evenly_spaced,
    iterations_per_epoch,
)
from translators.io import write_rgb
from translators.selection import Selection, held_out, score_generator

CHECKPOINT_NAME = "last.pt"


class TrainingModel(Protocol):
    """What the loop needs of a model; built as `cls(cfg, device, seed, ddp_device_ids,
    distributed)`, its nets created in a fixed order from the (seeded) global RNG."""

    lr: float  # the current learning rate, logged per epoch
    sim_to_real: nn.Module  # the generator `save` writes: what is scored and selected
    # progress-bar label -> loss key, e.g. {"G": "G_A"}
    progress_keys: dict[str, str]

    def train_step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, float]:
        """One update of every net on a batch of [-1, 1] images; the losses as floats."""

    def end_epoch(self) -> None:
        """Advance the lr schedules by one epoch."""

    def state_dict(self) -> dict[str, Any]:
        """What is the same on every DDP rank: nets, optimisers, schedules."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def rank_state_dict(self) -> dict[str, Any]:
        """This rank's own random state (image pools, patch samplers): saved per rank."""

    def load_rank_state_dict(self, state: dict[str, Any], device: torch.device) -> None: ...

    def sample_columns(self, fixed_A: torch.Tensor,
                       fixed_B: torch.Tensor) -> list[torch.Tensor]:
        """The columns of a sample grid, each N×3×H×W in [-1, 1]."""

    def save(self, out: Path) -> None:
        """Write what the translator's `load` reads (the sim -> real generator, its config)."""


@dataclass
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def setup(cls, device: torch.device) -> tuple[Distributed, torch.device]:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls(), device
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), world_size, local_rank), device


def train(name: str, model_class: type[TrainingModel], source: list[Path], target: list[Path],
          out: Path, cfg: GANConfig, *, device: torch.device | str | None = None,
          checkpoint_dir: Path | None = None, scorer: Scorer | None = None) -> dict[str, Any]:
    """Train (or resume training) translator `name`'s model; write what `model.save` writes and
    out/train_summary.json.

    `checkpoint_dir` (default out/checkpoints) must survive a crash for a restart to resume.
    `scorer` rates the generator every `cfg.score_every` epochs (rank 0 only); without one, or
    with score_every 0, the last epoch is published.
    Returns train_summary.json's contents plus `resumed_from` (the iterations it resumed at).
    """
    started = time.monotonic()
    ctx, device = Distributed.setup(resolve_device(device or "auto"))
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_dir = checkpoint_dir or out / "checkpoints"
    checkpoint_path = checkpoint_dir / CHECKPOINT_NAME
    scoring = scorer if cfg.score_every else None
    select = cfg.select if scoring else "last"
    if ctx.main and cfg.select != select:
        print(f"{name}: no target score given (the translator_train stage gives one): "
              "publishing the last epoch")
    score_frames = held_out(list(source), cfg)
    source = evenly_spaced(list(source), cfg.max_images)
    target = evenly_spaced(list(target), cfg.max_images)
    dataset = UnalignedDataset(source, target, cfg)
    fingerprint = _fingerprint(cfg, source, target, ctx.world_size,
                               scoring.description if scoring else None)

    state = _load_checkpoint(name, checkpoint_path, fingerprint, ctx)
    base_seed = state["base_seed"] if state else _shared_seed(device, ctx)
    model = model_class(cfg, device, seed=base_seed + 2 * ctx.rank,
                        ddp_device_ids=[device.index] if device.type == "cuda" else None,
                        distributed=ctx.world_size > 1)
    epochs = cfg.n_epochs + cfg.n_epochs_decay
    per_epoch = iterations_per_epoch(len(source), len(target), cfg.batch_size, ctx.world_size)
    total = epochs * per_epoch
    epoch, iteration, history, sums, resumed_from = 0, 0, [], {}, []
    selection = Selection()
    if state:
        model.load_state_dict(state["model"])
        _set_rng_state(state["ranks"][ctx.rank]["rng"])
        model.load_rank_state_dict(state["ranks"][ctx.rank], device)
        epoch, iteration = state["epoch"], state["iteration"]
        history, sums = state["history"], state["sums"]
        selection = Selection.from_state(state["selection"])
        resumed_from = [*state["resumed_from"], epoch * per_epoch + iteration]
        if ctx.main:
            print(f"{name}: resuming from iteration {resumed_from[-1]} of {total} "
                  f"(epoch {epoch + 1}, {checkpoint_path})")

    def save(position_epoch: int, position_iteration: int) -> None:
        ranks = _gather({"rng": _rng_state(), **model.rank_state_dict()}, ctx)
        if ctx.main:
            atomic_torch_save({
                "fingerprint": fingerprint, "base_seed": base_seed, "model": model.state_dict(),
                "ranks": ranks, "epoch": position_epoch, "iteration": position_iteration,
                "history": history, "sums": sums, "resumed_from": resumed_from,
                "selection": selection.state_dict(),
            }, checkpoint_path)

    score_name = scoring.name if scoring else ""
    live = _open_live(out, history, checkpoint_dir, selection, score_name) if ctx.main else None
    fixed_A, fixed_B = dataset.fixed(cfg.n_samples) if ctx.main and cfg.sample_every else (
        None, None)
    loader = DataLoader(dataset, batch_sampler=_PlanBatches(
        len(source), len(target), base_seed, cfg.batch_size, ctx, epochs, epoch, iteration),
        num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
        persistent_workers=False)
    step = epoch * per_epoch + iteration
    with tqdm(total=total, initial=step, unit="it", desc=name, disable=not ctx.main,
              dynamic_ncols=True) as progress:
        for real_A, real_B in loader:
            losses = model.train_step(real_A, real_B)
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            sums["_count"] = sums.get("_count", 0.0) + 1
            iteration, step = iteration + 1, step + 1
            progress.update(1)
            if step % 10 == 0 or iteration == per_epoch:
                progress.set_postfix(epoch=epoch + 1, **{
                    label: f"{losses[key]:.3f}" for label, key in model.progress_keys.items()})
            if iteration == per_epoch:  # epoch end: log means, decay lr, sample, checkpoint
                record = {"epoch": epoch + 1, "lr": model.lr, **_epoch_means(sums, ctx)}
                model.end_epoch()
                history.append(record)
                if ctx.main and scoring and Selection.due(cfg, epoch + 1, epochs):
                    _score(model, cfg, device, score_frames, scoring, selection, epoch + 1)
                if live is not None:
                    _log_epoch(live, record, _sample_grid(model, fixed_A, fixed_B, cfg,
                                                          checkpoint_dir, epoch, epochs),
                               score_name, selection.scores.get(epoch + 1))
                epoch, iteration, sums = epoch + 1, 0, {}
                save(epoch, 0)
            elif cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                save(epoch, iteration)

    # what was learned; not where a killed run resumed (printed above): a resumed run ends with
    # the same weights, so its outputs are the same bytes as an uninterrupted run's
    summary = {
        "translator": name, "iterations": step, "epochs": epochs,
        "iterations_per_epoch": per_epoch, "source_frames": len(source),
        "target_frames": len(target), "world_size": ctx.world_size,
        "final_losses": history[-1] if history else {},
        "selection": selection.summary(select, score_name, epochs),
    }
    if ctx.main:
        selection.publish(select, model.sim_to_real)
        model.save(out)
        atomic_write_json(out / "train_summary.json", summary)
        live.end()
        if not cfg.keep_checkpoints:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        print(f"{name}: {step} iterations ({epochs} epochs × {per_epoch}) on "
              f"{len(source)} sim / {len(target)} real frames in "
              f"{time.monotonic() - started:.1f} s; published epoch "
              f"{summary['selection']['published_epoch']} ({select})")
    if ctx.world_size > 1:
        dist.barrier()
    return {**summary, "resumed_from": resumed_from}


class _PlanBatches:
    """The batch sampler: every remaining epoch's plan, lazily, from (epoch, iteration) on."""

    def __init__(self, n_a: int, n_b: int, seed: int, batch_size: int, ctx: Distributed,
                 epochs: int, start_epoch: int, start_iteration: int) -> None:
        self.args = (n_a, n_b, seed)
        self.batch_size, self.ctx = batch_size, ctx
        self.epochs, self.start_epoch, self.start_iteration = epochs, start_epoch, start_iteration
        per_epoch = iterations_per_epoch(n_a, n_b, batch_size, ctx.world_size)
        self.remaining = max(0, (epochs - start_epoch) * per_epoch - start_iteration)

    def __len__(self) -> int:
        return self.remaining

    def __iter__(self) -> Iterator[list[Sample]]:
        for epoch in range(self.start_epoch, self.epochs):
            plan = epoch_plan(*self.args, epoch, self.batch_size, self.ctx.rank,
                              self.ctx.world_size)
            yield from plan[self.start_iteration if epoch == self.start_epoch else 0:]


def _fingerprint(cfg: GANConfig, source: list[Path], target: list[Path],
                 world_size: int, scorer: str | None) -> str:
    """What a checkpoint must match to be resumed: learning params, the frames, the world, and
    the score its best epoch was picked by."""
    blob = json.dumps({"cfg": cfg.learning_dict(), "source": [str(p) for p in source],
                       "target": [str(p) for p in target], "world_size": world_size,
                       "scorer": scorer}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _load_checkpoint(name: str, path: Path, fingerprint: str,
                     ctx: Distributed) -> dict | None:
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != fingerprint:
        if ctx.main:
            print(f"{name}: ignoring checkpoint {path}: it was made with other params or "
                  "frames; training from scratch")
        return None
    return state


def _shared_seed(device: torch.device, ctx: Distributed) -> int:
    """A base seed drawn from the (pipeline-seeded) global RNG, the same on every rank."""
    seed = torch.randint(2**31 - 1, (1,))
    if ctx.world_size > 1:
        seed = seed.to(device)
        dist.broadcast(seed, src=0)
    return int(seed.item())


def _rng_state() -> dict[str, Any]:
    """Every global RNG as tensors and plain lists (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "random": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    py = state["random"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))


def _gather(obj: dict[str, Any], ctx: Distributed) -> list[dict[str, Any]]:
    """Every rank's `obj` on rank 0 (its own pools and RNG), for one checkpoint file."""
    if ctx.world_size == 1:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def _epoch_means(sums: dict[str, float], ctx: Distributed) -> dict[str, float]:
    keys = sorted(k for k in sums if k != "_count")
    totals = torch.tensor([sums[k] for k in keys] + [sums.get("_count", 0.0)],
                          dtype=torch.float64)
    if ctx.world_size > 1:
        backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        totals = totals.to(backend_device)
        dist.all_reduce(totals)
        totals = totals.cpu()
    count = max(totals[-1].item(), 1.0)
    return {f"loss_{k}": totals[i].item() / count for i, k in enumerate(keys)}


def _sample_grid(model: TrainingModel, fixed_A: torch.Tensor | None,
                 fixed_B: torch.Tensor | None, cfg: GANConfig,
                 checkpoint_dir: Path, epoch: int, epochs: int) -> Path | None:
    """One row per sample frame of the model's columns (e.g. real A, G(A), ...), as PNG."""
    last = epoch + 1 == epochs
    if fixed_A is None or not ((epoch + 1) % cfg.sample_every == 0 or last):
        return None
    columns = model.sample_columns(fixed_A, fixed_B)
    n_rows = min(len(fixed_A), len(fixed_B))  # a domain may have fewer frames than n_samples
    rows = [torch.cat([c[i].cpu() for c in columns], dim=2) for i in range(n_rows)]
    grid = torch.cat(rows, dim=1).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    path = checkpoint_dir / "samples" / f"epoch_{epoch + 1:04d}.png"
    write_rgb(path, grid.permute(1, 2, 0).numpy())
    return path


def _score(model: TrainingModel, cfg: GANConfig, device: torch.device, frames: list[Path],
           scorer: Scorer, selection: Selection, epoch: int) -> None:
    """Score the generator after epoch `epoch` and record it. Every global RNG is put back:
    whatever the scorer draws (its extractor is built on the first call) must not change the
    training stream, or a resumed run (which builds it at another epoch) would differ."""
    rng = _rng_state()
    try:
        score = score_generator(model.sim_to_real, cfg, device, frames, scorer)
    finally:
        _set_rng_state(rng)
    selection.record(epoch, score, model.sim_to_real)


def _open_live(out: Path, history: list[dict], checkpoint_dir: Path, selection: Selection,
               score_name: str) -> Any:
    """A fresh DVCLive dir with the history so far replayed (so resuming never duplicates)."""
    from dvclive import Live  # imports DVC: only where logging happens

    live = Live(dir=str(out / "dvclive"), resume=False, report=None, save_dvc_exp=False,
                dvcyaml=None)
    for record in history:
        sample = checkpoint_dir / "samples" / f"epoch_{record['epoch']:04d}.png"
        _log_epoch(live, record, sample if sample.exists() else None, score_name,
                   selection.scores.get(record["epoch"]))
    return live


def _log_epoch(live: Any, record: dict[str, float], sample: Path | None, score_name: str,
               score: float | None) -> None:
    for key, value in record.items():
        if key != "epoch":
            live.log_metric(f"train/{key}", value)
    if score is not None:
        live.log_metric(f"score/{score_name}", score)
    if sample is not None:
        live.log_image(f"samples/{sample.name}", sample)
    live.next_step()
