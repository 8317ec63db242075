"""Data sets: the built-in synthetic streets and folders of your own frames."""

from selfdepth.data.folder import FolderDataset, FolderScene, find_scenes
from selfdepth.data.synthetic import synthesize

__all__ = ["FolderDataset", "FolderScene", "find_scenes", "synthesize"]
