"""segan: segment and paint the invisible parts of occluded objects (Ehsani et al., CVPR 2018)."""

__version__ = "0.1.0"
