"""bench/compare_peers.py's record, its Markdown table and its chart (decode tok/s and quality against size)."""
from __future__ import annotations

import os
from pathlib import Path

import peer_floor

MIB = 2**20


def record(a, peers, skipped: dict, timed: dict, quality: dict, quality_failed: dict, ppl_fp32: float,
           wins: list, load_start) -> dict:
    bandwidth = max(timed["read_bandwidth_gb_s"])
    rows = {}
    for p in peers:
        r = p.results
        floor = peer_floor.floor_tok_s(p.weight_bytes, bandwidth)
        q = quality.get(p.key, {})
        rows[p.key] = {
            "built_by": p.built_by, "artifact": r["artifact"], "runner": r["runner"], "threads": r["threads"],
            "size_bytes": p.size_bytes, "weight_bytes_per_token": p.weight_bytes,
            "prefill_tok_s": r["prefill_tok_s"], "decode_tok_s": r["decode_tok_s"], "ttft_s": r["ttft_s"],
            "load_s": r["load_s"], "peak_rss_bytes": r["peak_rss_bytes"],
            "ppl": q.get("ppl"), "ppl_delta": q["ppl"] - ppl_fp32 if q else None, "top1_vs_fp32": q.get("top1"),
            "quality_error": quality_failed.get(p.key),
            "floor_decode_tok_s": floor, "decode_fraction_of_floor": r["decode_tok_s"]["median"] / floor,
            "runs": r["runs"]}
    return {"model": "SmolLM2-135M-Instruct (embedded Q4_1 GGUF, dequantized to fp32 for every peer)",
            "bench": {k: timed[k] for k in ("machine", "settings", "load_average", "read_bandwidth_gb_s")},
            "floor_bandwidth_gb_s": bandwidth,
            "quality": {"windows": len(wins), "ctx": a.ctx, "scored_tokens": sum(len(w) - len(w) // 2 for w in wins),
                        "ppl_fp32": ppl_fp32},
            "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
            "llamacpp_omp_wait_policy": a.llamacpp_omp_wait, "peers": rows, "skipped": skipped}


def table(rec: dict) -> tuple[list[list], list[str], str]:
    rows = []
    for key, p in rec["peers"].items():
        ppl = f"{p['ppl']:.2f} ({p['ppl_delta']:+.2f})" if p["ppl"] is not None else "-"
        top1 = f"{p['top1_vs_fp32']:.3f}" if p["top1_vs_fp32"] is not None else "-"
        rows.append([f"**{key}**", p["built_by"], f"{p['size_bytes'] / MIB:.1f}",
                     f"{p['prefill_tok_s']['median']:.0f}", f"{p['decode_tok_s']['median']:.1f}",
                     f"{p['ttft_s']['median'] * 1000:.0f}", f"{p['peak_rss_bytes'] / MIB:.0f}", ppl, top1,
                     f"{p['weight_bytes_per_token'] / MIB:.1f} / {p['floor_decode_tok_s']:.0f}",
                     f"{p['decode_fraction_of_floor']:.2f}"])
    for key, why in rec["skipped"].items():
        rows.append([f"{key}", f"not measured: {why}", *["-"] * 9])
    m, s, q = rec["bench"]["machine"], rec["bench"]["settings"], rec["quality"]
    header = ["artifact", "built by", "MiB", "prefill tok/s", "decode tok/s", "TTFT ms", "peak RSS MiB",
              f"ppl (delta vs fp32 {q['ppl_fp32']:.2f})", "top-1 = fp32",
              "MiB read/token / floor tok/s", "decode / floor"]
    failed = {k: p["quality_error"] for k, p in rec["peers"].items() if p["quality_error"]}
    la = rec["load_average"]
    rb = rec["bench"]["read_bandwidth_gb_s"]
    note = (f"{m['cpu']}, {m['cores']} cores; read bandwidth at {s['threads']} threads {rb[0]} GB/s before the timing, "
            f"{rb[1]} after (the floor uses {rec['floor_bandwidth_gb_s']}; machine.py's cached one-thread copy figure: "
            f"{m['memory_bandwidth_gb_s']} GB/s, measured {m['bandwidth_measured']}). {s['threads']} threads everywhere; greedy, {s['gen_len']} new tokens after the "
            f"same {s['prompt_len']}-token WikiText-2 prompt; medians of {s['rotations'] * s['runs']} runs per artifact, "
            f"interleaved and counterbalanced as `edgellama bench --compare` ({s['rotations']} load orders, "
            f"{s['runs']} runs each, {s['idle_gap_s']} s idle before each). Load average {la['start'][0]:.1f} at the "
            f"start, {la['end'][0]:.1f} at the end (the benchmark's own threads add about {s['threads']}); on a shared "
            f"box the ratios are what to read: interleaving gives every artifact the same share of any load.\n\n"
            f"Quality: {q['windows']} WikiText-2 test windows of {q['ctx']} tokens, each scored on its second half "
            f"({q['scored_tokens']} tokens), teacher-forced; top-1 = share of those positions whose argmax equals the "
            f"fp32 model's. The floor: memory bandwidth / weight bytes read per decoded token (bench/peer_floor.py; "
            f"KV cache left out), and each artifact's decode as a fraction of it.\n\n"
            f"Every artifact starts from the same fp32 weights: the embedded GGUF is Q4_1 (embedding Q8_0), "
            f"dequantized once; so llama.cpp's Q4_0 and Q4_K_M re-quantize a model that was already quantized to "
            f"Q4_1, as every other row's 4-bit scheme does. SmolLM2's width (576) is not a multiple of 256, so "
            f"Q4_K_M falls back to other types for most tensors (mostly Q5_0; `quantization.tensor_types` in the JSON). "
            f"llama.cpp ran with OMP_WAIT_POLICY={rec['llamacpp_omp_wait_policy']} (its OpenMP threads' default "
            f"busy-wait collapses 2-thread decode on this shared box, docs/bench.md). Peak RSS counts the mapped "
            f"model pages a runtime touched.")
    if failed:
        note += "\n\nQuality not measured: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
    return rows, header, note


def chart(rec: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peers = rec["peers"]
    fig, (speed, quality) = plt.subplots(1, 2, figsize=(12, 5.6))
    bandwidth = rec["floor_bandwidth_gb_s"]
    # One colour and marker per artifact, named once in the legend below: labels beside points overlap
    # where artifacts are about the same size.
    markers = "osD^vP*X"
    for i, (key, p) in enumerate(peers.items()):
        mib, style = p["size_bytes"] / MIB, {"color": f"C{i}", "marker": markers[i % len(markers)], "s": 45}
        top1 = f", top-1 {p['top1_vs_fp32']:.2f}" if p["top1_vs_fp32"] is not None else ""
        speed.scatter(mib, p["decode_tok_s"]["median"], label=f"{key} ({mib:.0f} MiB{top1})", **style)
        if p["ppl_delta"] is not None:
            quality.scatter(mib, p["ppl_delta"], **style)
    xs = sorted(p["size_bytes"] / MIB for p in peers.values())
    grid = [xs[0] * 0.9 + i * (xs[-1] * 1.1 - xs[0] * 0.9) / 50 for i in range(51)]
    speed.plot(grid, [bandwidth * 1e9 / (x * MIB) for x in grid], "k--", lw=0.8,
               label=f"floor if every byte is read per token ({bandwidth} GB/s)")
    speed.set(xlabel="model size (MiB)", ylabel="decode tok/s (median)", title="Decode speed against size")
    speed.set_ylim(bottom=0)
    fig.legend(*speed.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    quality.set(xlabel="model size (MiB)", ylabel="perplexity - fp32 perplexity (WikiText-2 test)",
                title="Quality lost against size (lower is better)")
    m, s = rec["bench"]["machine"], rec["bench"]["settings"]
    fig.suptitle(f"SmolLM2-135M-Instruct, {s['threads']} threads, {m['cpu']}", fontsize=10)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
