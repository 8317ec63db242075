"""CPU flags and the precision they imply: bf16 only where the hardware computes it natively."""

from __future__ import annotations

import pytest

from selfdepth.hardware import cpu_flags, has_native_bf16, resolve_precision

SAPPHIRE_RAPIDS = "processor: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8\n"
EPYC_ROME = "processor: 0\nflags\t\t: fpu sse avx avx2 fma\nprocessor: 1\nflags\t\t: fpu sse avx avx2 fma\n"


def test_flags_come_from_cpuinfo():
    assert cpu_flags(EPYC_ROME) == {"avx2"}
    assert {"avx512_bf16", "amx_bf16", "avx512_vnni", "amx_int8"} <= cpu_flags(SAPPHIRE_RAPIDS)
    assert cpu_flags("") == set()
    assert isinstance(cpu_flags(), set)  # this machine's, whatever it has


@pytest.mark.parametrize("requested, cpuinfo, expected, notice", [
    ("auto", EPYC_ROME, "32-true", "no native bf16"),
    ("bf16-mixed", EPYC_ROME, "32-true", "no native bf16"),  # never the slow emulated path
    ("32-true", EPYC_ROME, "32-true", None),
    ("auto", SAPPHIRE_RAPIDS, "bf16-mixed", "has native bf16"),
    ("bf16-mixed", SAPPHIRE_RAPIDS, "bf16-mixed", None),
    ("32-true", SAPPHIRE_RAPIDS, "32-true", None),
])
def test_auto_picks_bf16_only_where_the_cpu_has_it(requested, cpuinfo, expected, notice):
    chosen, message = resolve_precision(requested, "cpu", cpu_flags(cpuinfo))
    assert chosen == expected
    assert (message is None) if notice is None else (notice in message)
    assert has_native_bf16(cpu_flags(cpuinfo)) == ("avx512_bf16" in cpuinfo)


def test_gpu_precision_follows_the_gpu_and_bad_names_are_refused():
    assert resolve_precision("auto", "gpu", set(), cuda_bf16=True)[0] == "bf16-mixed"
    assert resolve_precision("auto", "gpu", {"avx512_bf16"}, cuda_bf16=False)[0] == "32-true"
    with pytest.raises(ValueError, match="train.precision must be one of auto, 32-true, bf16-mixed"):
        resolve_precision("fp8", "cpu", set())


def test_bf16_inference_copy_matches_fp32_to_bf16_rounding_and_leaves_the_net_fp32():
    import torch

    from selfdepth.inference import optimise_for_inference
    from selfdepth.models import DepthNet

    torch.manual_seed(0)
    net = DepthNet().eval()
    x = torch.rand(2, 3, 64, 192)
    fp32 = optimise_for_inference(net, 64, 192)(x)
    bf16 = optimise_for_inference(net, 64, 192, bf16=True)(x)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape == (2, 1, 64, 192)
    assert next(net.parameters()).dtype == torch.float32  # the bf16 copy is a copy
    # bf16 keeps 8 mantissa bits: sigmoid disparities agree to about 1%, not exactly.
    assert (bf16 - fp32).abs().max() < 0.02 and not torch.equal(bf16, fp32)
