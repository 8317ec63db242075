"""Monodepth2 (PyPI ``monodepth2==1.0.0``) as a timing reference, for benchmarks only.

The wheel installs top-level modules named ``networks``, ``layers`` and ``utils``
and has a non-commercial licence, so it is never a dependency: it is installed
with ``pip install --no-deps --target`` into a scratch folder and put on
``sys.path`` only inside the benchmark process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

SCRATCH = Path.home() / ".cache" / "selfdepth-benchmarks" / "monodepth2-1.0.0"


def import_monodepth2() -> tuple[ModuleType, ModuleType] | None:
    """(networks, layers) of Monodepth2, or None when pip cannot fetch it."""
    if not (SCRATCH / "networks").is_dir():
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(SCRATCH), "monodepth2==1.0.0"]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return None
    sys.path.insert(0, str(SCRATCH))
    from types import SimpleNamespace

    import torchvision.models as models

    import layers  # noqa: E402 - from the scratch folder
    import networks  # noqa: E402

    # Monodepth2 calls resnet18(pretrained) positionally; torchvision >= 0.13 takes keywords only.
    # Give its module a shim instead of patching torchvision for everyone.
    def positional(fn):
        return lambda pretrained=False, **kw: fn(weights=None, **kw)

    names = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
    shim = SimpleNamespace(resnet=models.resnet, ResNet=models.ResNet, **{n: positional(getattr(models, n)) for n in names})
    networks.resnet_encoder.models = shim
    return networks, layers
