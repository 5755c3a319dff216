"""The discriminator D of SeGAN's painter (paper section 3): a pix2pix PatchGAN.

"Four convolutional layers, followed by one sigmoid layer": with n_layers=3 (pix2pix "basic",
the reference code's choice, 70x70 receptive field) these are the four 4x4 feature convolutions
(ndf, 2ndf, 4ndf, 8ndf channels), and the sigmoid layer is the 1-channel 4x4 scoring convolution
whose output goes through a sigmoid. n_layers=2 gives four convolutions in all, counting the
scoring one (34x34 receptive field).

D is conditional, D(x, y): it sees the generator input M and an image (real or painted),
concatenated on channels. forward() returns LOGITS, not probabilities: the losses use
binary_cross_entropy_with_logits, which is the BCE of the sigmoid output computed stably (and is
autocast-safe). probabilities() applies the paper's sigmoid.
"""

import torch
import torch.nn as nn

from .painter import init_pix2pix_weights


class PatchDiscriminator(nn.Module):
    """PatchGAN over cat(M, image): (N, 3, S, S) x 2 -> (N, 1, s, s) logits (30x30 for S=256).

    Args:
        condition_channels, image_channels: 3 and 3 (M and the RGB image).
        ndf: channels of the first convolution.
        n_layers: number of stride-2 convolutions (3 = pix2pix "basic").
    """

    def __init__(
        self,
        condition_channels: int = 3,
        image_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
    ):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(condition_channels + image_channels, ndf, 4, 2, 1),
            nn.LeakyReLU(0.2),
        ]
        width = ndf
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1  # the last feature conv keeps the resolution
            new_width = ndf * min(2**n, 8)
            layers += [
                nn.Conv2d(width, new_width, 4, stride, 1, bias=False),  # bias redundant before BN
                nn.BatchNorm2d(new_width),
                nn.LeakyReLU(0.2),
            ]
            width = new_width
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))  # per-patch score, before the sigmoid
        self.net = nn.Sequential(*layers)
        init_pix2pix_weights(self)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Logits of D(x, y) per patch: condition = M (Eq. 1), image = real or painted crop."""
        return self.net(torch.cat([condition, image], dim=1))

    def probabilities(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The paper's sigmoid output: the probability that each patch of `image` is real."""
        return torch.sigmoid(self(condition, image))
