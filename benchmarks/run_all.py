"""Re-run every speed benchmark one after another, then write one Markdown table of their ratios.

    python benchmarks/run_all.py            # runs them all (about 20-30 min on 2 cores), then the table
    python benchmarks/run_all.py --table    # only the table, from the results files as they are

Each benchmark times selfdepth and its reference in the same run and records the machine; the
table (benchmarks/results/speed.md) puts the ratios side by side with each file's CPU flags, so
a reader can reproduce the README's figures. Nothing else may run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from selfdepth.hardware import cpu_flags, cpu_model

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# (script, its results file, [(row label, key, target, "ratio" | "fps" | "s")]); a dotted key reads a nested value
BENCHMARKS = [
    ("inference.py", "inference.json", [
        ("inference, TorchScript vs Monodepth2 eager", "ratio", "<= 0.9x", "ratio"),
        ("inference, onnxruntime fp32 vs Monodepth2 eager", "ratio_onnxruntime", "", "ratio"),
        ("inference, onnxruntime int8 vs Monodepth2 eager", "ratio_int8", "<= 0.4x", "ratio"),
        ("inference, int8 vs fp32 onnxruntime", "int8_over_fp32_onnxruntime", "<= 0.6x", "ratio"),
        ("inference, int8: its lower bound at the int8 matmul peak over its time", "fraction_of_int8_peak", "", "ratio"),
    ]),
    ("train_step.py", "train_step.json", [
        ("training step, bf16 autocast vs Monodepth2 (CPUs with native bf16)", "selfdepth_bf16.time_vs_monodepth2",
         "<= 0.5x", "ratio"),
        ("training step, bf16 autocast, channels-last vs Monodepth2", "selfdepth_bf16_channels_last.time_vs_monodepth2",
         "<= 0.5x", "ratio"),
        ("training step, fp32 compiled loss vs Monodepth2", "selfdepth.time_vs_monodepth2", "", "ratio"),
        ("training step, fp32 compiled, channels-last vs Monodepth2", "selfdepth_channels_last.time_vs_monodepth2", "",
         "ratio"),
        ("training step, fp32 eager vs Monodepth2", "selfdepth_eager.time_vs_monodepth2", "", "ratio"),
        ("training peak memory, bf16 vs Monodepth2", "selfdepth_bf16.memory_vs_monodepth2", "<= 0.8x", "ratio"),
    ]),
    ("live.py", "live.json", [
        ("live video end to end, best backend", "best_pipeline_fps", ">= 15 fps", "fps"),
        ("live video ceiling: network at the int8 matmul peak + codec and colour CPU time", "ceiling_fps", "", "fps"),
    ]),
    ("app.py", "app.json", [("app: upload to depth image in Chromium", "median_s", "", "s")]),
]


def _flags(result: dict) -> str:
    machine = result.get("machine")
    if isinstance(machine, dict):
        return ", ".join(machine.get("flags", [])) or "none listed"
    cpu = result.get("cpu")
    if isinstance(cpu, dict):
        return ", ".join(cpu.get("flags", [])) or "none listed"
    return "not recorded (older file)"


def _value(result: dict, key: str) -> float | None:
    """``result[key]``, or for a dotted key ``a.b`` ``result[a][b]``; None where absent."""
    for part in key.split("."):
        result = result.get(part) if isinstance(result, dict) else None
    return result


def table() -> str:
    lines = [f"# Speed benchmarks\n\nTable written on: {cpu_model()} ({', '.join(sorted(cpu_flags())) or 'no flags'}).",
             "Each row is from the file named, measured in one run beside its reference.\n",
             "| what | result | target | CPU flags of that run | file |", "|---|---|---|---|---|"]
    for _, name, rows in BENCHMARKS:
        path = RESULTS / name
        if not path.is_file():
            lines.append(f"| {rows[0][0]} | not run | {rows[0][2]} | | `{name}` |")
            continue
        result = json.loads(path.read_text())
        for label, key, target, kind in rows:
            value = _value(result, key)
            text = "n/a" if value is None else {"ratio": f"{value:.2f}x", "fps": f"{value:.1f} frames/s",
                                                 "s": f"{value:.2f} s"}[kind]
            lines.append(f"| {label} | {text} | {target} | {_flags(result)} | `{name}` |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", action="store_true", help="only write the table from the existing files")
    args = parser.parse_args()
    failed = []
    if not args.table:
        for script, _, _ in BENCHMARKS:
            print(f"=== {script}", flush=True)
            # One that cannot run (app.py needs `make demo`'s model) does not stop the rest; its rows keep
            # the file as it was, and the run ends with a non-zero status naming it.
            if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE.parent).returncode != 0:
                failed.append(script)
    out = RESULTS / "speed.md"
    out.write_text(table())
    print(out.read_text())
    if failed:
        sys.exit(f"did not finish: {', '.join(failed)} (see its message above); its rows are from its previous file")


if __name__ == "__main__":
    main()
