"""selfdepth: self-supervised monocular depth from stereo pairs and video."""

from selfdepth._version import __version__
from selfdepth.inference import DepthModel, Prediction, load

__all__ = ["DepthModel", "Prediction", "__version__", "load"]
