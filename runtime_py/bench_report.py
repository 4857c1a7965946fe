"""`edgellama bench` without --json: the result object as a Rich table, the machine, and the ratios."""
from __future__ import annotations


def _spread(d: dict, scale: float = 1.0, fmt: str = "{:.1f}") -> str:
    return f"{fmt.format(d['median'] * scale)} ({fmt.format(d['min'] * scale)}-{fmt.format(d['max'] * scale)})"


def machine_line(m: dict) -> str:
    if m["kind"] == "android":
        return f"{m.get('manufacturer', '')} {m.get('model', '')}, SoC {m.get('soc', '?')}, Android {m.get('android', '?')}"
    return (f"{m['cpu']} ({m['arch']}), {m['cores']} cores, {m['memory_bytes'] / 2**30:.1f} GiB, "
            f"memory bandwidth {m['memory_bandwidth_gb_s']} GB/s (one-thread copy, measured {m['bandwidth_measured']})")


def terminal_table(record: dict):
    """One row per measure, one column per artifact: it fits an 80-column terminal with three artifacts."""
    from rich.table import Table

    s = record["settings"]
    results = record["results"]
    table = Table(title=f"{s['prompt_len']} prompt tokens, {s['gen_len']} generated; median (min-max) of "
                        f"{len(results[0]['runs'])} runs", title_justify="left")
    table.add_column("")
    for r in results:
        table.add_column(r["artifact"], justify="right", overflow="fold")
    rows = {
        "runner": lambda r: r["runner"],
        "size MiB": lambda r: f"{r['artifact_bytes'] / 2**20:.1f}",
        "threads": lambda r: "default" if r["threads"] is None else str(r["threads"]),
        "load s": lambda r: f"{r['load_s']['median']:.2f}",
        "TTFT ms": lambda r: _spread(r["ttft_s"], 1000, "{:.0f}"),
        "prefill tok/s": lambda r: _spread(r["prefill_tok_s"]),
        "decode tok/s": lambda r: _spread(r["decode_tok_s"]),
        "peak RSS MiB": lambda r: f"{r['peak_rss_bytes'] / 2**20:.0f}",
    }
    for name, cell in rows.items():
        table.add_row(name, *(cell(r) for r in results))
    return table


def ratio_lines(record: dict) -> list[str]:
    return [f"{r['artifact']} / {r['to']}: decode x{r['decode_tok_s']:.3f}, prefill x{r['prefill_tok_s']:.3f}, "
            f"TTFT x{r['ttft_s']:.3f}" for r in record["ratios"]]
