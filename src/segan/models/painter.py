"""The generator G of SeGAN's painter (paper section 3): pix2pix's U-Net ("unet_256").

Input M (Eq. 1, 3 channels, 256x256), output the full object's RGB appearance over the same
crop, in [-1, 1] (Tanh): training targets must use that range. An encoder of `num_downs`
stride-2 4x4 convolutions down to 1x1 (8 for 256x256), a mirrored decoder of transposed
convolutions, and a skip connection from every encoder level to its decoder level.

As in pix2pix, z is not an input: dropout (0.5) in the decoder blocks just above the bottleneck
is the noise. It is active in train() mode only; call eval() for deterministic painting.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def init_pix2pix_weights(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix init (as in the reference code): conv ~ N(0, 0.02), BatchNorm weight ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


class SubpixelConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d(k=4, stride 2, padding 1) computed as a 3x3 convolution to 4 x C_out
    channels followed by a pixel shuffle: the same parameters and the same function (equal up
    to float rounding). Output row 2i + p of the transposed convolution reads input rows
    i + d through kernel row p + 1 - 2d, so the 3x3 kernel is W rearranged with zeros where
    that row (or column) falls outside 0..3. It spends 9/4 of the multiply-adds, which pays
    where C_out is tiny: the U-Net's RGB output layer runs 1.27x faster forward + backward on
    an H100 (benchmarks/narrow_convs.py)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=bias)

    def subpixel_weight(self) -> torch.Tensor:
        w = self.weight  # (C_in, C_out, 4, 4)
        k = w.new_zeros(self.out_channels, 2, 2, self.in_channels, 3, 3)
        for p in range(2):
            for d in (-1, 0, 1):
                ky = p + 1 - 2 * d
                if not 0 <= ky <= 3:
                    continue
                for q in range(2):
                    for e in (-1, 0, 1):
                        kx = q + 1 - 2 * e
                        if 0 <= kx <= 3:
                            k[:, p, q, :, d + 1, e + 1] = w[:, :, ky, kx].t()
        return k.reshape(4 * self.out_channels, self.in_channels, 3, 3)  # pixel_shuffle order

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.repeat_interleave(4)
        return F.pixel_shuffle(F.conv2d(x, self.subpixel_weight(), bias, 1, 1), 2)


class UNetGenerator(nn.Module):
    """pix2pix U-Net: unet_256 is num_downs=8, ngf=64 (54.4 M parameters).

    Level i (0 = outermost) has ngf * min(2^i, 8) channels. The input side must be divisible by
    2^num_downs (256 for 8 downs; 64 with 6 downs gives a tiny test config).

    Args:
        in_channels, out_channels: 3 and 3 (M in, RGB out).
        num_downs: number of stride-2 levels; the bottleneck is side / 2^num_downs.
        ngf: channels of the outermost level.
        dropout: probability in the (num_downs - 5) decoder blocks between the 8x-wide levels
            (3 blocks for unet_256, as in pix2pix); 0 disables.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        dropout: float = 0.5,
    ):
        super().__init__()
        if num_downs < 2:
            raise ValueError("num_downs must be at least 2")
        self.num_downs = num_downs
        width = [ngf * min(2**i, 8) for i in range(num_downs)]  # channels after down[i]

        # Conv biases are off before BatchNorm (redundant there); the outermost up conv keeps one.
        self.down = nn.ModuleList()
        for i in range(num_downs):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(in_channels if i == 0 else width[i - 1], width[i], 4, 2, 1,
                                    bias=False))
            if 0 < i < num_downs - 1:  # no norm on the input layer nor on the 1x1 bottleneck
                layers.append(nn.BatchNorm2d(width[i]))
            self.down.append(nn.Sequential(*layers))

        # up[i] maps level i back to level i-1's resolution; it reads cat(skip_i, up[i+1] output)
        self.up = nn.ModuleList()
        for i in range(num_downs):
            c_in = width[i] if i == num_downs - 1 else 2 * width[i]
            c_out = out_channels if i == 0 else width[i - 1]
            # the RGB output layer (3 channels) as a 3x3 conv + pixel shuffle: same function
            up = (SubpixelConvTranspose2d(c_in, c_out) if i == 0
                  else nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False))
            layers = [nn.ReLU(), up]
            if i == 0:
                layers.append(nn.Tanh())
            else:
                layers.append(nn.BatchNorm2d(c_out))
                if dropout > 0 and 4 <= i <= num_downs - 2:  # pix2pix: z as dropout
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

        init_pix2pix_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, S, S) -> (N, out_channels, S, S) in [-1, 1]."""
        factor = 2**self.num_downs
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"input side must be divisible by 2^num_downs = {factor}, "
                             f"got {tuple(x.shape[-2:])}")
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for i in range(self.num_downs - 2, -1, -1):
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        return x
