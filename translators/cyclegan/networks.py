"""The nets: ResNet and U-Net generators, PatchGAN and multi-scale discriminators.

Layer for layer the official pytorch-CycleGAN-and-pix2pix nets (so parameter counts match the
paper: ResNet-9 at ngf 64 = 11,378,179, 70×70 PatchGAN at ndf 64 = 2,764,737), plus the
pix2pixHD multi-scale discriminator. Discriminators return every layer's features so the
feature-matching loss can use them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from translators.cyclegan.config import CycleGANConfig, GANConfig

NormFactory = Callable[[int], nn.Module]
NetT = TypeVar("NetT", bound=nn.Module)


def norm_factory(norm: str) -> tuple[NormFactory, bool]:
    """(norm layer for C channels, whether convs before it need a bias).

    Instance norm has no affine params (the reference), so the convs keep their bias; batch
    norm's own shift makes a conv bias redundant.
    """
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False), True
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True), False
    if norm == "none":
        return (lambda channels: nn.Identity()), True
    raise ValueError(f"norm {norm!r} is not allowed; choose instance, batch or none")


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, norm: NormFactory, bias: bool) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, two stride-2 downs, n_blocks residual blocks, two ups, c7s1-3, tanh."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, norm: str = "instance") -> None:
        super().__init__()
        norm_layer, bias = norm_factory(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=bias),
                                   norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                       norm_layer(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm_layer, bias) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=bias),
                       norm_layer(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.pad_multiple = 4  # two stride-2 downsamplings

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetSkipBlock(nn.Module):
    """One U-Net level: down, the inner levels, up, then concatenated with its own input.

    As in pix2pix, the first LeakyReLU is in-place, so the skip carries the activated input.
    """

    def __init__(self, outer: int, inner: int, norm: NormFactory, bias: bool,
                 submodule: nn.Module | None = None, outermost: bool = False) -> None:
        super().__init__()
        self.outermost = outermost
        innermost = submodule is None
        down_conv = nn.Conv2d(3 if outermost else outer, inner, 4, stride=2, padding=1,
                              bias=bias)
        up_in = inner if innermost else inner * 2
        if outermost:
            up_conv = nn.ConvTranspose2d(up_in, 3, 4, stride=2, padding=1)
            layers = [down_conv, submodule, nn.ReLU(True), up_conv, nn.Tanh()]
        elif innermost:
            up_conv = nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), up_conv, norm(outer)]
        else:
            up_conv = nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv, norm(inner), submodule,
                      nn.ReLU(True), up_conv, norm(outer)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix's U-Net: `downs` stride-2 levels (8 = unet_256), channels capped at ngf·8."""

    def __init__(self, ngf: int = 64, downs: int = 8, norm: str = "instance") -> None:
        super().__init__()
        if downs < 5:
            raise ValueError(f"unet_downs must be >= 5 (the pix2pix U-Net), got {downs}")
        norm_layer, bias = norm_factory(norm)
        block = UnetSkipBlock(ngf * 8, ngf * 8, norm_layer, bias)  # innermost
        for _ in range(downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, norm_layer, bias, block)
        for mult in (4, 2, 1):
            block = UnetSkipBlock(ngf * mult, ngf * mult * 2, norm_layer, bias, block)
        self.model = UnetSkipBlock(ngf, ngf, norm_layer, bias, block, outermost=True)
        self.pad_multiple = 2**downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN: n_layers stride-2 convs, one stride-1, a 1-channel map of real/fake scores."""

    def __init__(self, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 leaky_slope: float = 0.2) -> None:
        super().__init__()
        norm_layer, bias = norm_factory(norm)
        blocks = [nn.Sequential(nn.Conv2d(3, ndf, 4, stride=2, padding=1),
                                nn.LeakyReLU(leaky_slope, True))]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            blocks.append(nn.Sequential(
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                norm_layer(ndf * mult), nn.LeakyReLU(leaky_slope, True)))
        blocks.append(nn.Sequential(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output; the last one is the patch score map."""
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD: the same PatchGAN on the image and on 2×, 4×, ... downsampled copies.

    With num_D = 1 this is exactly one PatchGAN, which is how `basic` and `n_layers` are built.
    """

    def __init__(self, ndf: int = 64, n_layers: int = 3, num_D: int = 1, norm: str = "instance",
                 leaky_slope: float = 0.2) -> None:
        super().__init__()
        self.scales = nn.ModuleList(NLayerDiscriminator(ndf, n_layers, norm, leaky_slope)
                                    for _ in range(num_D))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale (finest first), that scale's features (last = score map)."""
        outputs = []
        for i, scale in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            outputs.append(scale(x))
        return outputs


def build_generator(cfg: CycleGANConfig) -> nn.Module:
    if cfg.netG == "resnet":
        return build_resnet_generator(cfg)
    if cfg.netG == "unet":
        return init_weights(UnetGenerator(cfg.ngf, cfg.unet_downs, cfg.norm), cfg.init_gain)
    raise ValueError(f"netG {cfg.netG!r} is not allowed; choose resnet or unet")


def build_resnet_generator(cfg: GANConfig) -> ResnetGenerator:
    return init_weights(ResnetGenerator(cfg.ngf, cfg.n_blocks, cfg.norm), cfg.init_gain)


def build_discriminator(cfg: GANConfig) -> MultiscaleDiscriminator:
    if cfg.netD not in ("basic", "n_layers", "multiscale"):
        raise ValueError(f"netD {cfg.netD!r} is not allowed; choose basic, n_layers or multiscale")
    n_layers = 3 if cfg.netD == "basic" else cfg.n_layers_D
    num_D = cfg.num_D if cfg.netD == "multiscale" else 1
    net = MultiscaleDiscriminator(cfg.ndf, n_layers, num_D, cfg.norm, cfg.leaky_slope)
    return init_weights(net, cfg.init_gain)


def init_weights(net: NetT, gain: float) -> NetT:
    """Normal(0, gain) convs with zero bias; batch-norm scales Normal(1, gain) (the reference)."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(module.weight, 0.0, gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    return net


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
