"""The CycleGAN model: its four nets, losses, optimisers, lr schedules and image pools.

Naming follows the paper's code: A = sim (source), B = real (target); G_A: A→B, G_B: B→A;
D_A judges domain B (real_B vs G_A's fakes), D_B judges domain A.
Everything random here (the image pools) draws from its own generator, so a checkpoint
restores it exactly and a resumed run continues bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from translators.cyclegan.config import CycleGANConfig, GANConfig
from translators.cyclegan.networks import build_discriminator, build_generator
from translators.generator import bf16_autocast, cuda_speedups, save_generator

WEIGHTS = "G_A.pt"  # what the cyclegan translator ships: G_A, sim -> real


class GANLoss(nn.Module):
    """LSGAN (MSE to 1/0) or the vanilla GAN (BCE on logits), averaged over D's scales."""

    def __init__(self, mode: str = "lsgan") -> None:
        super().__init__()
        if mode not in ("lsgan", "vanilla"):
            raise ValueError(f"gan_mode {mode!r} is not allowed; choose lsgan or vanilla")
        self.mode = mode

    def forward(self, outputs: list[list[torch.Tensor]], target_is_real: bool) -> torch.Tensor:
        losses = []
        for features in outputs:
            scores = features[-1].float()
            target = torch.full_like(scores, 1.0 if target_is_real else 0.0)
            if self.mode == "lsgan":
                losses.append(F.mse_loss(scores, target))
            else:
                losses.append(F.binary_cross_entropy_with_logits(scores, target))
        return torch.stack(losses).mean()


def feature_matching_loss(fake: list[list[torch.Tensor]],
                          real: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between D's mean intermediate features on fakes and on real images.

    pix2pixHD matches features of aligned pairs; here the pairs are unaligned (that is the
    point of CycleGAN), so the batch means are matched instead (Salimans et al. 2016).
    """
    losses = [F.l1_loss(f.float().mean(0), r.detach().float().mean(0))
              for fake_scale, real_scale in zip(fake, real, strict=True)
              for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True)]
    return torch.stack(losses).mean()


class ImagePool:
    """A history of generated images, so D also sees older fakes (Shrivastava et al. 2017).

    Until full, images are stored and returned; then each image is, with probability 1/2,
    swapped for a random stored one (which is returned instead).
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        returned = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                returned.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                returned.append(self.images[index])
                self.images[index] = image.clone()
            else:
                returned.append(image)
        return torch.stack(returned)

    def state_dict(self) -> dict[str, Any]:
        stored = torch.stack(self.images).cpu() if self.images else torch.empty(0)
        return {"images": stored, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.images = [image.to(device) for image in state["images"]]
        self.generator.set_state(state["generator"])


class GeneratorPair(nn.Module):
    """Both generators in one forward, so DDP and torch.compile see one module per step."""

    def __init__(self, G_A: nn.Module, G_B: nn.Module) -> None:
        super().__init__()
        self.G_A, self.G_B = G_A, G_B

    def forward(self, real_A: torch.Tensor, real_B: torch.Tensor,
                identity: bool) -> dict[str, torch.Tensor]:
        fake_B = self.G_A(real_A)
        fake_A = self.G_B(real_B)
        out = {"fake_B": fake_B, "rec_A": self.G_B(fake_B),
               "fake_A": fake_A, "rec_B": self.G_A(fake_A)}
        if identity:
            out["idt_A"] = self.G_A(real_B)  # G_A should leave real B images alone
            out["idt_B"] = self.G_B(real_A)
        return out


class DiscriminatorPair(nn.Module):
    """Both discriminators on real and pooled fake images: the whole D step in one forward."""

    def __init__(self, D_A: nn.Module, D_B: nn.Module) -> None:
        super().__init__()
        self.D_A, self.D_B = D_A, D_B

    def forward(self, real_A: torch.Tensor, real_B: torch.Tensor,
                fake_A: torch.Tensor, fake_B: torch.Tensor) -> dict[str, Any]:
        return {"real_B": self.D_A(real_B), "fake_B": self.D_A(fake_B),
                "real_A": self.D_B(real_A), "fake_A": self.D_B(fake_A)}


def step_module(module: nn.Module, cfg: GANConfig, device: torch.device, distributed: bool,
                ddp_device_ids: list[int] | None) -> nn.Module:
    """What a training step calls: `module` DDP-wrapped under torchrun and compiled if asked
    (CUDA only); the plain module stays for saving and for passes without gradient sync."""
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        module = DDP(module, device_ids=ddp_device_ids)
    if cfg.compile and device.type == "cuda":
        module = torch.compile(module)
    return module


@torch.no_grad()
def translate(net: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """[-1, 1] images through `net` in eval mode (matters for batch norm), then back to train."""
    was_training = net.training
    net.eval()
    try:
        return net(images.to(device)).float()
    finally:
        net.train(was_training)


def linear_decay(n_epochs: int, n_epochs_decay: int):
    """lr factor per epoch: 1 for n_epochs, then linearly to 1/(decay+1) (the reference rule)."""
    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)
    return factor


class GANModel:
    """What CycleGANModel and CUTModel share: an Adam for the generator side and one for the
    discriminator side, each on the linear-decay schedule, and the checkpointed state (the
    same on every DDP rank) of the attributes named in `checkpointed`."""

    checkpointed: tuple[str, ...]
    shipped: str  # the attribute holding the sim -> real generator, the one `save` writes

    @property
    def sim_to_real(self) -> nn.Module:
        return getattr(self, self.shipped)

    def optimise(self, cfg: GANConfig, generators: nn.Module, discriminators: nn.Module) -> None:
        betas = (cfg.beta1, cfg.beta2)
        self.optimizer_G = torch.optim.Adam(generators.parameters(), lr=cfg.lr, betas=betas)
        self.optimizer_D = torch.optim.Adam(discriminators.parameters(), lr=cfg.lr, betas=betas)
        rule = linear_decay(cfg.n_epochs, cfg.n_epochs_decay)
        self.scheduler_G = torch.optim.lr_scheduler.LambdaLR(self.optimizer_G, rule)
        self.scheduler_D = torch.optim.lr_scheduler.LambdaLR(self.optimizer_D, rule)

    def end_epoch(self) -> None:
        """Advance the lr schedules by one epoch."""
        self.scheduler_G.step()
        self.scheduler_D.step()

    @property
    def lr(self) -> float:
        return self.optimizer_G.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        """Nets, optimisers and schedules: the same on every DDP rank."""
        return {name: getattr(self, name).state_dict() for name in self.checkpointed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.checkpointed:
            getattr(self, name).load_state_dict(state[name])


def floats(losses: dict[str, torch.Tensor]) -> dict[str, float]:
    """A step's losses as floats, in one device-to-host copy."""
    values = torch.stack([losses[k].detach().float() for k in losses]).cpu().tolist()
    return dict(zip(losses, values, strict=True))


class CycleGANModel(GANModel):
    """Owns the nets, optimisers, schedulers and pools; `train_step` is one G and one D update.
    translators/training.py's loop trains it (its `TrainingModel` protocol)."""

    progress_keys = {"G": "G_A", "D": "D_A", "cyc": "cycle_A"}
    checkpointed = ("G_A", "G_B", "D_A", "D_B", "optimizer_G", "optimizer_D", "scheduler_G",
                    "scheduler_D")
    shipped = "G_A"

    def __init__(self, cfg: CycleGANConfig, device: torch.device, seed: int,
                 ddp_device_ids: list[int] | None = None, distributed: bool = False) -> None:
        self.cfg, self.device = cfg, device
        self.memory_format, self.autocast = cuda_speedups(cfg, device)
        # created in a fixed order from the (seeded) global RNG, so a fresh run is reproducible
        self.G_A, self.G_B = build_generator(cfg), build_generator(cfg)
        self.D_A, self.D_B = build_discriminator(cfg), build_discriminator(cfg)
        self.generators = GeneratorPair(self.G_A, self.G_B).to(
            device, memory_format=self.memory_format)
        self.discriminators = DiscriminatorPair(self.D_A, self.D_B).to(
            device, memory_format=self.memory_format)
        self.optimise(cfg, self.generators, self.discriminators)
        self.pool_A = ImagePool(cfg.pool_size, seed)      # fakes of domain A (from G_B)
        self.pool_B = ImagePool(cfg.pool_size, seed + 1)  # fakes of domain B (from G_A)
        self.gan_loss = GANLoss(cfg.gan_mode)
        # what the steps call: maybe DDP-wrapped and/or compiled; the plain nets stay for saving
        self._generators_step = step_module(self.generators, cfg, device, distributed,
                                            ddp_device_ids)
        self._discriminators_step = step_module(self.discriminators, cfg, device, distributed,
                                                ddp_device_ids)

    def train_step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, float]:
        """One generator update then one discriminator update; the losses as floats."""
        cfg = self.cfg
        real_A = real_A.to(self.device, memory_format=self.memory_format, non_blocking=True)
        real_B = real_B.to(self.device, memory_format=self.memory_format, non_blocking=True)
        use_identity = cfg.lambda_identity > 0
        use_fm = cfg.lambda_feature_matching > 0

        # --- generators: fool both Ds, cycle back, (optionally) leave the other domain alone
        for net in (self.D_A, self.D_B):
            net.requires_grad_(False)
        self.optimizer_G.zero_grad(set_to_none=True)
        with bf16_autocast(self.autocast):
            out = self._generators_step(real_A, real_B, use_identity)
            # the plain Ds (not DDP): they get no gradient in this step
            pred_fake_B, pred_fake_A = self.D_A(out["fake_B"]), self.D_B(out["fake_A"])
            losses = {
                "G_A": self.gan_loss(pred_fake_B, True),
                "G_B": self.gan_loss(pred_fake_A, True),
                "cycle_A": F.l1_loss(out["rec_A"].float(), real_A) * cfg.lambda_cycle,
                "cycle_B": F.l1_loss(out["rec_B"].float(), real_B) * cfg.lambda_cycle,
            }
            if use_identity:
                weight = cfg.lambda_cycle * cfg.lambda_identity
                losses["idt_A"] = F.l1_loss(out["idt_A"].float(), real_B) * weight
                losses["idt_B"] = F.l1_loss(out["idt_B"].float(), real_A) * weight
            if use_fm:
                with torch.no_grad():
                    pred_real_B, pred_real_A = self.D_A(real_B), self.D_B(real_A)
                losses["fm"] = cfg.lambda_feature_matching * (
                    feature_matching_loss(pred_fake_B, pred_real_B)
                    + feature_matching_loss(pred_fake_A, pred_real_A))
        loss_G = torch.stack(list(losses.values())).sum()
        loss_G.backward()
        self.optimizer_G.step()

        # --- discriminators: real vs. a mix of current and older fakes
        for net in (self.D_A, self.D_B):
            net.requires_grad_(True)
        self.optimizer_D.zero_grad(set_to_none=True)
        fake_B = self.pool_B.query(out["fake_B"].detach())
        fake_A = self.pool_A.query(out["fake_A"].detach())
        with bf16_autocast(self.autocast):
            pred = self._discriminators_step(real_A, real_B, fake_A, fake_B)
            losses["D_A"] = 0.5 * (self.gan_loss(pred["real_B"], True)
                                   + self.gan_loss(pred["fake_B"], False))
            losses["D_B"] = 0.5 * (self.gan_loss(pred["real_A"], True)
                                   + self.gan_loss(pred["fake_A"], False))
        (losses["D_A"] + losses["D_B"]).backward()
        self.optimizer_D.step()
        return floats(losses)

    def translate(self, images: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """[-1, 1] images through G_A (AtoB) or G_B, in eval mode."""
        return translate(self.G_A if direction == "AtoB" else self.G_B, images, self.device)

    def sample_columns(self, fixed_A: torch.Tensor,
                       fixed_B: torch.Tensor) -> list[torch.Tensor]:
        """[real A, G_A(A), G_B(G_A(A)), real B, G_B(B), G_A(G_B(B))]."""
        fake_B = self.translate(fixed_A, "AtoB")
        rec_A = self.translate(fake_B, "BtoA")
        fake_A = self.translate(fixed_B, "BtoA")
        rec_B = self.translate(fake_A, "AtoB")
        return [fixed_A, fake_B, rec_A, fixed_B, fake_A, rec_B]

    def save(self, out: Path) -> None:
        save_generator(self.G_A, self.cfg, out, "cyclegan", WEIGHTS,
                       {"generator": "G_A", "direction": "sim (A) -> real (B)"})

    def rank_state_dict(self) -> dict[str, Any]:
        """The image pools: each rank has its own (saved with the rank's RNG state)."""
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def load_rank_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.pool_A.load_state_dict(state["pool_A"], device)
        self.pool_B.load_state_dict(state["pool_B"], device)

