"""The parity report: `parity.json` (every number), `parity.md` (the same, readable) and PNG plots
drawn from the JSON as written — each PNG names the JSON series it shows and carries its sha256,
so a plot can be checked against the numbers it claims to show. Also the terminal table."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

REFERENCES = ("fp32", "twin", "x86")
TITLES = {"fp32": "vs fp32 (quality)", "twin": "vs same-recipe twin (fidelity)",
          "x86": "arm vs x86 (same artifact)"}
# (metric, label, format) rows of the table and the Markdown report
ROWS = (("positions", "positions compared", "{:d}"), ("top1_agreement", "top-1 agreement", "{:.4f}"),
        ("top5_overlap", "top-5 overlap", "{:.4f}"), ("kl_mean", "KL(ref‖artifact) mean, nats", "{:.3g}"),
        ("kl_p99", "KL p99", "{:.3g}"), ("kl_max", "KL max", "{:.3g}"),
        ("max_abs_logit_diff", "max |Δlogit|", "{:.3g}"), ("mean_abs_logit_diff", "mean |Δlogit|", "{:.3g}"),
        ("cosine_mean", "cosine mean", "{:.6f}"), ("cosine_min", "cosine min", "{:.6f}"),
        ("ppl_reference", "perplexity, reference", "{:.3f}"), ("ppl_artifact", "perplexity, artifact", "{:.3f}"),
        ("ppl_ratio", "perplexity ratio", "{:.4f}"), ("greedy_match_mean", "greedy match, mean tokens", "{:.2f}"),
        ("greedy_match_min", "greedy match, min tokens", "{:d}"), ("greedy_full_match", "greedy full-match fraction", "{:.3f}"))
PLOTS = {"kl_by_position.png": ("by_position", "kl_mean"), "top1_by_position.png": ("by_position", "top1_agreement"),
         "logit_scatter.png": ("scatter", None)}


def fmt(fmt_spec: str, value) -> str:
    if value is None:
        return "-"
    return fmt_spec.format(int(value)) if fmt_spec == "{:d}" else fmt_spec.format(value)


def cell(result: dict, ref: str, metric: str, spec: str) -> tuple[str, bool | None]:
    """Value text with its limit, and whether the limit holds (None: no limit)."""
    data = result["references"].get(ref, {})
    value = data.get("metrics", {}).get(metric)
    limits = [lim for lim in data.get("limits", []) if lim["metric"] == metric]
    text = fmt(spec, value)
    if not limits:
        return text, None
    ok = all(lim["pass"] for lim in limits)
    return text + "  (" + ", ".join(("≥ " if lim["bound"] == "min" else "≤ ") + f"{lim['value']:g}" for lim in limits) + ")", ok


def on_arch(result: dict) -> str:
    arch = result.get("arch")
    return f" on {arch['name']} (QEMU -cpu {arch['cpu']})" if arch else ""


def terminal_table(result: dict):
    from rich.table import Table

    refs = [r for r in REFERENCES if r in result["references"]]
    table = Table(title=f"parity of {result['artifact']} ({result['scheme']}){on_arch(result)}", title_justify="left")
    table.add_column("metric")
    for ref in refs:
        table.add_column(TITLES[ref], justify="right")
    for metric, label, spec in ROWS:
        row = []
        for ref in refs:
            text, ok = cell(result, ref, metric, spec)
            row.append(text if ok is None else f"[{'green' if ok else 'red'}]{text} {'✓' if ok else '✗'}[/]")
        table.add_row(label, *row)
    return table


def markdown(result: dict) -> str:
    refs = [r for r in REFERENCES if r in result["references"]]
    lines = [f"# Parity: {result['artifact']}{on_arch(result)}", "",
             f"**{result['verdict']}** — scheme `{result['scheme']}`, recipe `{result['recipe']}`, "
             f"thresholds `{result['thresholds_file']}`", ""]
    lines += [f"- {f}" for f in result["failures"]] + ([""] if result["failures"] else [])
    inputs = result["inputs"]
    lines += [f"Measured {result['created']} on {result['machine']}, {result['seconds']:.0f} s in all. "
              f"{inputs['prompt_count']} prompts from `{inputs['prompts']}` (each followed by "
              f"{inputs['gen_tokens']} greedy tokens of the artifact), "
              + (f"{inputs['windows']} windows of {inputs['window_len']} tokens from `{inputs['text']}`."
                 if inputs.get("text") else "no text windows."), "",
              "| metric | " + " | ".join(TITLES[r] for r in refs) + " |", "|---|" + "---|" * len(refs)]
    for metric, label, spec in ROWS:
        cells = []
        for ref in refs:
            text, ok = cell(result, ref, metric, spec)
            cells.append(text if ok is None else f"{text} {'pass' if ok else '**FAIL**'}")
        lines.append(f"| {label.replace('|', chr(92) + '|')} | " + " | ".join(cells) + " |")
    lines += ["", "References: " + "; ".join(f"{r} = `{result['references'][r]['path']}`" for r in refs), ""]
    for ref in refs:
        lines += [f"## {TITLES[ref]}, per data set", "", "| data | positions | top-1 | KL mean | KL p99 | ppl ref | ppl artifact |",
                  "|---|---|---|---|---|---|---|"]
        for name, m in result["references"][ref]["by_dataset"].items():
            lines.append(f"| {name} | {m['positions']} | {m['top1_agreement']:.4f} | {m['kl_mean']:.3g} | {m['kl_p99']:.3g} | "
                         f"{m['ppl_reference']:.3f} | {m['ppl_artifact']:.3f} |")
        lines += ["", f"Greedy match lengths per prompt: {result['references'][ref].get('greedy_match', [])}", ""]
    meta = result.get("runtime_metadata") or {}
    if meta:
        lines += ["## Runtime metadata in the artifact", "", "| method | value |", "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in meta.items()] + [""]
    lines += ["## Plots", ""] + [f"![{name}]({name})" for name in PLOTS] + [""]
    return "\n".join(lines)


def series_digest(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def plotted_data(result: dict, plot: str) -> dict:
    """Exactly the JSON values a plot draws, per reference."""
    group, key = PLOTS[plot]
    out = {}
    for ref in REFERENCES:
        if ref not in result["references"]:
            continue
        series = result["references"][ref]["series"][group]
        out[ref] = {"x": series["position"], "y": series[key]} if key else {"x": series["reference"], "y": series["artifact"]}
    return out


def draw(result: dict, plot: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = plotted_data(result, plot)
    group, key = PLOTS[plot]
    if key:
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        for ref, xy in data.items():
            ax.plot(xy["x"], xy["y"], marker=".", label=TITLES[ref])
        if key == "kl_mean":
            ax.set_yscale("symlog", linthresh=1e-6)
            ax.set_ylabel("mean KL(ref‖artifact), nats")
        else:
            ax.set_ylabel("top-1 agreement")
            ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("position in sequence")
        ax.legend()
    else:
        fig, axes = plt.subplots(1, len(data), figsize=(5 * len(data), 4.5), dpi=100, squeeze=False)
        for ax, (ref, xy) in zip(axes[0], data.items()):
            ax.scatter(xy["x"], xy["y"], s=3, alpha=0.5)
            lo, hi = min(xy["x"] + xy["y"]), max(xy["x"] + xy["y"])
            ax.plot([lo, hi], [lo, hi], color="gray", linewidth=0.8)
            ax.set_title(TITLES[ref])
            ax.set_xlabel("reference logit")
            ax.set_ylabel("artifact logit")
    fig.suptitle(f"{result['scheme']} · {Path(result['artifact']).name}")
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Source": f"parity.json references.*.series.{group}" + (f".{key}" if key else ""),
                                              "Data-SHA256": series_digest(data)})
    plt.close(fig)


def write_report(result: dict, folder: Path) -> list[Path]:
    """parity.json first; the Markdown and the plots are then made from the JSON as read back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "parity.json").write_text(json.dumps(result, indent=1))
    written = json.loads((folder / "parity.json").read_text())
    (folder / "parity.md").write_text(markdown(written))
    for name in PLOTS:
        draw(written, name, folder / name)
    return [folder / n for n in ("parity.json", "parity.md", *PLOTS)]
