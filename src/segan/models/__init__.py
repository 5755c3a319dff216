"""SeGAN's networks: segmentor, painter generator (U-Net), PatchGAN discriminator, and SeGAN."""

from .baselines import IBBE, ContextEncoder, Pix2Pix
from .discriminator import PatchDiscriminator
from .efficientnet_lite import EfficientNetLite, load_imagenet
from .ensemble import SegmentorEnsemble
from .painter import SubpixelConvTranspose2d, UNetGenerator, init_pix2pix_weights
from .segan import SeGAN, compose_generator_input, crop_boxes, crop_object_masks
from .segmentor import BACKBONES, Segmentor, imagenet_cache_path, load_backbone_state

__all__ = [
    "BACKBONES",
    "IBBE",
    "ContextEncoder",
    "EfficientNetLite",
    "Pix2Pix",
    "PatchDiscriminator",
    "SeGAN",
    "SegmentorEnsemble",
    "Segmentor",
    "SubpixelConvTranspose2d",
    "UNetGenerator",
    "compose_generator_input",
    "crop_boxes",
    "crop_object_masks",
    "imagenet_cache_path",
    "init_pix2pix_weights",
    "load_imagenet",
    "load_backbone_state",
]
