"""Procedural street scenes, ray-cast with numpy, with exact depth and poses.

The renderer is selfdepth's built-in data set and its best test fixture: it
knows the true depth and camera motion of every frame, so training can be
scored exactly and the geometry can be checked against the truth.

World frame: x right, y down, z forward (the camera convention), metres. The
road is the plane ``y = camera_height``; the car drives along +z. Everything
solid is an axis-aligned box (buildings, parked cars, poles), so a ray cast is
the slab test, vectorised over pixels and looped over the few boxes that reach
the image. The sky is a backdrop at infinity: its colour depends on the ray
direction only, so it is consistent between views, and its depth is 0
(invalid), as lidar gives none either.

Texture lookups use a mip pyramid chosen per pixel by the pixel's footprint,
so distant surfaces do not alias differently in the two views. Shading is
ambient + Lambertian from one sun direction, identical in every view.

The package splits by concern: ``textures`` (materials, procedural and photo
textures, mip tables, sky), ``scene`` (cameras, street layout, outliers),
``render`` (ray casting and shading) and ``write`` (the folder layout on disk).
"""

from selfdepth.data.synthetic.render import render_frame, render_view
from selfdepth.data.synthetic.scene import (
    BASELINE,
    CAMERA_HEIGHT,
    Camera,
    Outliers,
    Scene,
    check_size,
    kitti_like_intrinsics,
    make_scene,
)
from selfdepth.data.synthetic.textures import CAR, FACADE, FACADE_PHOTO, POLE, ROAD, SIDEWALK
from selfdepth.data.synthetic.write import SynthSummary, contact_sheet, render_if_missing, synthesize, write_scene

__all__ = [
    "BASELINE",
    "CAMERA_HEIGHT",
    "CAR",
    "FACADE",
    "FACADE_PHOTO",
    "POLE",
    "ROAD",
    "SIDEWALK",
    "Camera",
    "Outliers",
    "Scene",
    "SynthSummary",
    "check_size",
    "contact_sheet",
    "kitti_like_intrinsics",
    "make_scene",
    "render_frame",
    "render_if_missing",
    "render_view",
    "synthesize",
    "write_scene",
]
