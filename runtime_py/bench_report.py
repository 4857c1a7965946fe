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
    from rich.table import Table

    s = record["settings"]
    table = Table(title=f"{s['prompt_len']} prompt tokens, {s['gen_len']} generated; median (min-max) of "
                        f"{len(record['results'][0]['runs'])} runs", title_justify="left")
    for col in ("artifact", "runner", "MiB", "threads", "load s", "TTFT ms", "prefill tok/s", "decode tok/s",
                "peak RSS MiB"):
        table.add_column(col, justify="left" if col in ("artifact", "runner") else "right")
    for r in record["results"]:
        table.add_row(r["artifact"], r["runner"], f"{r['artifact_bytes'] / 2**20:.1f}",
                      "default" if r["threads"] is None else str(r["threads"]), f"{r['load_s']['median']:.2f}",
                      _spread(r["ttft_s"], 1000, "{:.0f}"), _spread(r["prefill_tok_s"]), _spread(r["decode_tok_s"]),
                      f"{r['peak_rss_bytes'] / 2**20:.0f}")
    return table


def ratio_lines(record: dict) -> list[str]:
    return [f"{r['artifact']} / {r['to']}: decode x{r['decode_tok_s']:.3f}, prefill x{r['prefill_tok_s']:.3f}, "
            f"TTFT x{r['ttft_s']:.3f}" for r in record["ratios"]]
