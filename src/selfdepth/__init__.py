"""selfdepth: self-supervised monocular depth from stereo pairs and video."""

__version__ = "0.1.0"

from selfdepth.predict import DepthModel, Prediction, load  # noqa: E402 - needs __version__ above

__all__ = ["DepthModel", "Prediction", "__version__", "load"]
