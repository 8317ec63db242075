"""Multi-process training through Lightning's DDP: 2 CPU processes (gloo) end with identical weights.

With a time budget, so the per-step agreement on the trained minutes (the learning-rate drop) runs too."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import torch

SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from lightning.pytorch.callbacks import Callback
    from selfdepth.config import load_config
    from selfdepth.train import fit

    class SaveWeights(Callback):
        def on_train_end(self, trainer, pl_module):
            torch.save(pl_module.state_dict(), f"{sys.argv[2]}/rank{trainer.global_rank}.pt")

    root, out = sys.argv[1], sys.argv[2]
    config = load_config(None, [f"data.train={root}", "data.height=64", "data.width=128", "train.batch_size=2",
                                "train.max_steps=3", f"train.out_dir={out}/run", "train.progress_bar=false",
                                "train.accelerator=cpu", "train.devices=2", "train.strategy=ddp",
                                "train.mode=mono+stereo", "train.max_minutes=60"])  # + the ranks' agreed clock
    fit(config, callbacks=[SaveWeights()])
    """
)


def test_two_cpu_processes_end_identical(tiny_root, tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(tiny_root), str(tmp_path)], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    for key in w0:
        torch.testing.assert_close(w0[key], w1[key], rtol=0, atol=0, msg=key)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 3
