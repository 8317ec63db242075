"""selfdepth: self-supervised monocular depth from stereo pairs and video."""

__version__ = "0.1.0"

__all__ = ["__version__"]
