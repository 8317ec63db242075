"""The loss study's statistics, tables and chart: paired differences against a baseline, by region.

A study run is identified by (arm, variant, seed); the same seed means the same
initial weights and the same batches for every variant, so variants are
compared **paired**: per seed, ``d = AbsRel(variant) - AbsRel(baseline)``, then
the mean of d, its 95% t-interval over seeds, and in how many seeds the
variant was better. The smallest difference the study could have detected is
``(t_0.975 + t_0.8) * sd(d) / sqrt(n)`` (a two-sided test at 5% with 80% power).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from selfdepth.evaluate import METRICS

__all__ = ["REGIONS", "metric_of", "summarise", "paired", "contrasts", "markdown_report", "save_chart"]

# Regions in the order the tables show them; "all" is every valid pixel.
REGIONS = ("all", "moving", "glass", "occluded", "occluded_stereo", "occluded_temporal", "rest")
_LABELS = {"abs_rel": "AbsRel", "sq_rel": "SqRel", "rmse": "RMSE", "rmse_log": "RMSElog",
           "a1": "δ<1.25", "a2": "δ<1.25²", "a3": "δ<1.25³"}


def metric_of(record: dict, region: str = "all", metric: str = "abs_rel", which: str = "metrics") -> float | None:
    """One number of a run record: ``which`` is "metrics" (the model) or "constant"; None if the region is absent."""
    if region == "all":
        return record[which][metric]
    entry = record.get("regions", {}).get(region)
    key = "model" if which == "metrics" else "constant"
    return None if entry is None or entry[key] is None else entry[key][metric]


def _groups(records: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """``{arm: {variant: [records sorted by seed]}}`` in first-seen order."""
    out: dict[str, dict[str, list[dict]]] = {}
    for r in records:
        out.setdefault(r["arm"], {}).setdefault(r["variant"], []).append(r)
    for variants in out.values():
        for runs in variants.values():
            runs.sort(key=lambda r: r["seed"])
    return out


def summarise(records: list[dict]) -> dict:
    """``{arm: {variant: {region: {metric: {"mean", "std", "n"}}}}}`` (population std over seeds)."""
    out: dict = {}
    for arm, variants in _groups(records).items():
        for variant, runs in variants.items():
            for region in REGIONS:
                cells = {}
                for metric in METRICS:
                    values = [v for v in (metric_of(r, region, metric) for r in runs) if v is not None]
                    if values:
                        cells[metric] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}
                if cells:
                    out.setdefault(arm, {}).setdefault(variant, {})[region] = cells
    return out


def paired(records: list[dict], baseline: str, metric: str = "abs_rel") -> dict:
    """Paired differences ``variant - baseline`` per seed: ``{arm: {variant: {region: stats}}}``.

    stats: ``mean``, ``ci95`` (lo, hi; None with one seed), ``n`` (seeds), ``better`` (seeds where the
    variant's error is lower), ``detectable`` (smallest |mean| this n and spread could detect; None if n < 2),
    and ``relative`` (mean / the baseline's mean).
    """
    from scipy import stats

    out: dict = {}
    for arm, variants in _groups(records).items():
        base = {r["seed"]: r for r in variants.get(baseline, [])}
        for variant, runs in variants.items():
            if variant == baseline:
                continue
            for region in REGIONS:
                pairs = [(metric_of(r, region, metric), metric_of(base[r["seed"]], region, metric))
                         for r in runs if r["seed"] in base]
                pairs = [(v, b) for v, b in pairs if v is not None and b is not None]
                if not pairs:
                    continue
                d = np.array([v - b for v, b in pairs])
                n = len(d)
                entry = {"mean": float(d.mean()), "n": n, "better": int((d < 0).sum()), "ci95": None,
                         "detectable": None, "relative": float(d.mean() / np.mean([b for _, b in pairs]))}
                if n >= 2:
                    se = float(d.std(ddof=1) / np.sqrt(n))
                    t = float(stats.t.ppf(0.975, n - 1))
                    entry["ci95"] = [float(d.mean() - t * se), float(d.mean() + t * se)]
                    entry["detectable"] = (t + float(stats.t.ppf(0.8, n - 1))) * se
                out.setdefault(arm, {}).setdefault(variant, {})[region] = entry
    return out


def contrasts(records: list[dict], pairs: list[tuple[str, str]], metric: str = "abs_rel") -> dict:
    """Paired differences between two variants other than the baseline: ``{arm: {"a - b": {region: stats}}}``.

    Each ``(a, b)`` is ``paired`` with ``b`` as the baseline, on the arms that ran both; e.g.
    ``("adaptive_wavelet", "adaptive_pixel_finest")`` isolates the wavelet from what comes with it.
    """
    out: dict = {}
    for a, b in pairs:
        for arm, variants in paired([r for r in records if r["variant"] in (a, b)], b, metric).items():
            if a in variants:
                out.setdefault(arm, {})[f"{a} - {b}"] = variants[a]
    return out


def _diff_rows(diffs: dict[str, dict], regions: list[str]) -> list[str]:
    """Markdown rows of paired differences, one per variant (or contrast), with the detectable difference."""
    lines = []
    for name, cells in diffs.items():
        row = [_fmt_diff(cells[g]) if g in cells else "-" for g in regions]
        det = cells.get("all", {}).get("detectable")
        lines.append(f"| {name} | " + " | ".join(row) + f" | {'-' if det is None else f'{det:.4f}'} |")
    return lines


def _fmt_diff(entry: dict) -> str:
    if entry["ci95"] is None:
        return f"{entry['mean']:+.4f} (1 seed)"
    lo, hi = entry["ci95"]
    mark = " **" if hi < 0 or lo > 0 else ""  # the interval excludes 0
    return f"{entry['mean']:+.4f} [{lo:+.4f}, {hi:+.4f}] {entry['better']}/{entry['n']}{mark}"


def markdown_report(records: list[dict], baseline: str, describe: dict[str, str] | None = None,
                    pairs: list[tuple[str, str]] | None = None) -> str:
    """Per arm: AbsRel mean ± std by region, paired differences against ``baseline`` with 95% intervals,
    then the plan's other contrasts (``pairs``, see ``contrasts``)."""
    summary, diffs, others = summarise(records), paired(records, baseline), contrasts(records, pairs or [])
    lines: list[str] = []
    for arm, variants in summary.items():
        regions = [g for g in REGIONS if any(g in cells for cells in variants.values())]
        lines += [f"### {arm}", ""]
        if describe and arm in describe:
            lines += [describe[arm], ""]
        share = _pixel_shares(records, arm)
        header = [f"{g} ({share[g]:.1%})" if g in share else g for g in regions]
        lines += ["AbsRel, mean ± std over seeds (region: share of valid test pixels):", ""]
        lines += ["| variant | seeds | " + " | ".join(header) + " |", "|---" * (len(regions) + 2) + "|"]
        for variant, cells in variants.items():
            row = [f"{cells[g]['abs_rel']['mean']:.4f} ± {cells[g]['abs_rel']['std']:.4f}" if g in cells else "-"
                   for g in regions]
            lines.append(f"| {variant} | {cells['all']['abs_rel']['n']} | " + " | ".join(row) + " |")
        const = _constant_row(records, arm, regions)
        lines.append("| constant depth | - | " + " | ".join(const) + " |")
        if arm in diffs:
            lines += ["", f"Paired difference in AbsRel against `{baseline}` (negative = better): mean "
                      "[95% interval] seeds-better/seeds; ** where the interval excludes 0:", ""]
            lines += ["| variant | " + " | ".join(regions) + " | detectable (all) |", "|---" * (len(regions) + 2) + "|"]
            lines += _diff_rows(diffs[arm], regions)
        if arm in others:
            lines += ["", "Other paired contrasts (the same seeds; negative = the first is better):", ""]
            lines += ["| contrast | " + " | ".join(regions) + " | detectable (all) |", "|---" * (len(regions) + 2) + "|"]
            lines += _diff_rows(others[arm], regions)
        lines.append("")
    return "\n".join(lines)


def _pixel_shares(records: list[dict], arm: str) -> dict[str, float]:
    run = next(r for r in records if r["arm"] == arm)
    return {g: e["pixel_fraction"] for g, e in run.get("regions", {}).items()}


def _constant_row(records: list[dict], arm: str, regions: list[str]) -> list[str]:
    run = next(r for r in records if r["arm"] == arm)
    values = [metric_of(run, g, "abs_rel", "constant") for g in regions]
    return ["-" if v is None else f"{v:.4f}" for v in values]


def save_chart(records: list[dict], baseline: str, path: str | Path, title: str = "") -> Path:
    """Paired AbsRel difference against ``baseline`` with 95% intervals, per arm, variant and region."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diffs = paired(records, baseline)
    arms = list(diffs) or ["(no comparison yet)"]
    fig, axes = plt.subplots(len(arms), 1, figsize=(10, 3.2 * len(arms)), squeeze=False)
    shown = ("all", "moving", "glass", "occluded", "rest")
    for ax, arm in zip(axes[:, 0], arms):
        variants = list(diffs.get(arm, {}))
        width = 0.8 / max(len(shown), 1)
        for k, region in enumerate(shown):
            xs, means, errs = [], [], []
            for i, variant in enumerate(variants):
                entry = diffs[arm][variant].get(region)
                if entry is None:
                    continue
                xs.append(i + (k - len(shown) / 2 + 0.5) * width)
                means.append(entry["mean"])
                lo, hi = entry["ci95"] or (entry["mean"], entry["mean"])
                errs.append([[entry["mean"] - lo], [hi - entry["mean"]]])
            if xs:
                err = np.concatenate(errs, axis=1)
                ax.bar(xs, means, width, yerr=err, capsize=2, label=region)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(range(len(variants)), variants)
        ax.set_ylabel(f"ΔAbsRel vs {baseline}")
        ax.set_title(f"{arm} (below 0: better than {baseline})")
        if variants:
            ax.legend(fontsize=7, ncol=len(shown))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
