"""SeGAN's networks: segmentor, painter generator (U-Net), PatchGAN discriminator, and SeGAN."""

from .discriminator import PatchDiscriminator
from .painter import UNetGenerator, init_pix2pix_weights
from .segan import SeGAN, compose_generator_input, crop_boxes, crop_object_masks, expand_boxes
from .segmentor import Segmentor, imagenet_cache_path, load_backbone_state

__all__ = [
    "PatchDiscriminator",
    "SeGAN",
    "Segmentor",
    "UNetGenerator",
    "compose_generator_input",
    "crop_boxes",
    "crop_object_masks",
    "expand_boxes",
    "imagenet_cache_path",
    "init_pix2pix_weights",
    "load_backbone_state",
]
