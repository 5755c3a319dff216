"""segan: segment and paint the invisible parts of occluded objects (Ehsani et al., CVPR 2018).

    from segan import SeganPredictor
    scene = SeganPredictor.from_checkpoint("runs/tiny").predict(image, visible_masks)
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["ObjectPrediction", "ScenePrediction", "SeganPredictor", "__version__"]
_LAZY = {"ObjectPrediction", "ScenePrediction", "SeganPredictor"}


def __getattr__(name: str) -> Any:
    # Lazy, so `import segan.data...` (e.g. in generator workers) does not import torch.
    if name in _LAZY:
        from segan import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'segan' has no attribute {name!r}")
