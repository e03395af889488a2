"""The CUT model: G, D and the projection heads H, the LSGAN and PatchNCE losses, Adam, lr
schedules. translators/training.py's loop trains it (its `TrainingModel` protocol).

One generator, sim (A) -> real (B). Its loss is LSGAN against the PatchGAN plus PatchNCE: each
sampled patch of the output, seen through G's own encoder and H, must be closer to the input's
patch at the same position than to the input's other patches. Everything random here (patch
positions, flips) draws from the model's own generator, so a checkpoint restores it exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from translators.cut.config import CUTConfig
from translators.cut.networks import PatchProjector, encode, nce_layers, sample_patch_ids
from translators.cyclegan.model import GANLoss, GANModel, floats, step_module, translate
from translators.cyclegan.networks import (
    ResnetGenerator,
    build_discriminator,
    build_resnet_generator,
)
from translators.generator import bf16_autocast, cuda_speedups, save_generator

WEIGHTS = "G.pt"  # what the cut translator ships


def patch_nce_loss(queries: torch.Tensor, keys: torch.Tensor,
                   temperature: float) -> torch.Tensor:
    """PatchNCE on B×S×D unit vectors: for each image and each of its S query patches, an S-way
    classification among the S key patches of the same image, the one at the query's own
    position being the positive (the diagonal) and the other S-1 the negatives (taken from the
    same image, as the paper finds best). Mean cross-entropy over images and patches.

    Keys are targets, not learned through: they carry no gradient.
    """
    batch, patches, _ = queries.shape
    # fp32: at tau 0.07 logits reach 1/0.07, and bf16 would round them to a few digits
    logits = torch.bmm(queries.float(), keys.detach().float().transpose(1, 2)) / temperature
    positives = torch.arange(patches, device=logits.device).repeat(batch)
    return F.cross_entropy(logits.flatten(0, 1), positives)


class ContrastiveGenerator(nn.Module):
    """G and H in one forward (one module for DDP and torch.compile): the translations and the
    projected patches of input (keys) and output (queries) at shared sampled positions."""

    def __init__(self, G: ResnetGenerator, H: PatchProjector, layers: list[int],
                 num_patches: int, sampler: torch.Generator) -> None:
        super().__init__()
        self.G, self.H = G, H
        self.layers, self.num_patches, self.sampler = layers, num_patches, sampler

    def forward(self, images: torch.Tensor, flip: bool) -> dict[str, Any]:
        if flip:
            # flip equivariance: G(flipped x)'s features, flipped back, must match x's own
            with torch.no_grad():  # keys get no gradient anyway
                source, _ = encode(self.G, images, self.layers)
            _, fake = encode(self.G, images.flip(3), self.layers, decode=True)
        else:  # the input's features come with the translation, from the same pass
            source, fake = encode(self.G, images, self.layers, decode=True)
        output, _ = encode(self.G, fake, self.layers)
        if flip:
            output = [feature.flip(3) for feature in output]
        ids = sample_patch_ids(source, self.num_patches, self.sampler)
        return {"fake": fake, "keys": self.H(source, ids), "queries": self.H(output, ids)}


class RealFakeDiscriminator(nn.Module):
    """D on real and on fake images in one forward (one DDP forward per backward)."""

    def __init__(self, D: nn.Module) -> None:
        super().__init__()
        self.D = D

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[Any, Any]:
        return self.D(real), self.D(fake)


class CUTModel(GANModel):
    """Owns G, D, H, their optimisers and schedules; `train_step` is one G+H and one D update."""

    progress_keys = {"G": "G_GAN", "D": "D", "nce": "NCE_X"}
    checkpointed = ("G", "D", "H", "optimizer_G", "optimizer_D", "scheduler_G", "scheduler_D")
    shipped = "G"

    def __init__(self, cfg: CUTConfig, device: torch.device, seed: int,
                 ddp_device_ids: list[int] | None = None, distributed: bool = False) -> None:
        self.cfg, self.device = cfg, device
        self.memory_format, self.autocast = cuda_speedups(cfg, device)
        layers = nce_layers(cfg.ngf, cfg.n_blocks)
        # created in a fixed order from the (seeded) global RNG, so a fresh run is reproducible
        self.G = build_resnet_generator(cfg)
        self.D = build_discriminator(cfg)
        self.H = PatchProjector(list(layers.values()), cfg.nce_dim)
        self.sampler = torch.Generator().manual_seed(seed)  # patch positions and flips
        self.generator = ContrastiveGenerator(self.G, self.H, list(layers), cfg.num_patches,
                                              self.sampler).to(device,
                                                               memory_format=self.memory_format)
        self.discriminator = RealFakeDiscriminator(self.D).to(device,
                                                              memory_format=self.memory_format)
        self.optimise(cfg, self.generator, self.D)  # H is learned with G, in G's Adam
        self.gan_loss = GANLoss(cfg.gan_mode)
        self._generator_step = step_module(self.generator, cfg, device, distributed,
                                           ddp_device_ids)
        self._discriminator_step = step_module(self.discriminator, cfg, device, distributed,
                                               ddp_device_ids)

    def nce_loss(self, out: dict[str, Any], images: slice) -> torch.Tensor:
        """PatchNCE of the batch rows `images`, averaged over the layers (so lambda does not
        grow with the number of layers)."""
        return torch.stack([
            patch_nce_loss(q[images], k[images], self.cfg.nce_temperature)
            for q, k in zip(out["queries"], out["keys"], strict=True)]).mean()

    def train_step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, float]:
        """One G+H update then one D update; the losses (weighted) as floats."""
        cfg = self.cfg
        real_A = real_A.to(self.device, memory_format=self.memory_format, non_blocking=True)
        real_B = real_B.to(self.device, memory_format=self.memory_format, non_blocking=True)
        n = len(real_A)
        identity = cfg.identity_weight > 0
        flip = cfg.flips and bool(torch.rand((), generator=self.sampler) < 0.5)

        # --- G and H: fool D; keep each sim patch's content (and, for cut, each real patch's)
        self.D.requires_grad_(False)
        self.optimizer_G.zero_grad(set_to_none=True)
        with bf16_autocast(self.autocast):
            # cut translates real frames too, in the same pass (instance norm: per image)
            images = torch.cat([real_A, real_B]) if identity else real_A
            out = self._generator_step(images, flip)
            fake_B = out["fake"][:n]
            losses = {"G_GAN": self.gan_loss(self.D(fake_B), True),
                      "NCE_X": cfg.nce_weight * self.nce_loss(out, slice(0, n))}
            if identity:
                losses["NCE_Y"] = cfg.identity_weight * self.nce_loss(out, slice(n, None))
        torch.stack(list(losses.values())).sum().backward()
        self.optimizer_G.step()

        # --- D: real frames vs this step's translations
        self.D.requires_grad_(True)
        self.optimizer_D.zero_grad(set_to_none=True)
        with bf16_autocast(self.autocast):
            pred_real, pred_fake = self._discriminator_step(real_B, fake_B.detach())
            losses["D"] = 0.5 * (self.gan_loss(pred_real, True)
                                 + self.gan_loss(pred_fake, False))
        losses["D"].backward()
        self.optimizer_D.step()
        return floats(losses)

    def sample_columns(self, fixed_A: torch.Tensor,
                       fixed_B: torch.Tensor) -> list[torch.Tensor]:
        """[real A, G(A), real B, G(B)]: G(B) shows how much G changes real frames."""
        return [fixed_A, translate(self.G, fixed_A, self.device),
                fixed_B, translate(self.G, fixed_B, self.device)]

    def save(self, out: Path) -> None:
        save_generator(self.G, self.cfg, out, "cut", WEIGHTS,
                       {"generator": "G", "direction": "sim (A) -> real (B)"})

    def rank_state_dict(self) -> dict[str, Any]:
        """The patch sampler: each rank draws its own positions and flips."""
        return {"sampler": self.sampler.get_state()}

    def load_rank_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.sampler.set_state(state["sampler"])
