"""SmolLM2-135M-Instruct (the embedded default GGUF) through edgellama and every peer, in one run: the same
model, the same thread count, the same prompt, the same evaluation text.

Rows: edgellama's .pte (default and small recipes) and ONNX (default recipe); ExecuTorch's export_llm
.pte (bench/decode_speed.py); onnxruntime-genai's model builder (bench/onnx_decode_speed.py);
optimum-onnx + MatMulNBitsQuantizer (bench/optimum_peer.py); llama.cpp through llama-cpp-python at
Q4_0 and Q4_K_M (bench/llamacpp_peer.py). Every artifact is built into the ignored cache
(.cache/peers) the first time and reused after; a peer that cannot be built or run is listed with the
reason, and the others are measured.

Speed is measured by `edgellama bench --compare`'s code (runtime_py/bench.py): each artifact in a
worker process of its own through the runner its users embed (TextLLMRunner, onnxruntime-genai,
llama.cpp), interleaved and counterbalanced, exactly --prompt-len prompt tokens of WikiText-2 text and
--gen-len generated. Quality (bench/peer_quality.py): perplexity on WikiText-2 test windows and top-1
agreement with the fp32 model. The physical floor (bench/peer_floor.py): the machine's measured
memory bandwidth over the weight bytes each decoded token reads.

Writes bench/results/NAME.{json,md,png}.

Usage: python bench/compare_peers.py [--threads 2] [--runs 2] [--prompt-len 100] [--gen-len 128]
       [--windows 8] [--ctx 512] [--skip PEER[=REASON] ...] [--cache DIR]"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PEERS, RESULTS, write_results  # noqa: E402

import peer_floor  # noqa: E402
import peer_quality  # noqa: E402

TEXTLLM = "edgellama.runtime.bench_textllm:TextLLMBench"
GENAI = "edgellama.runtime.bench_genai:GenAIBench"
LLAMACPP = "llamacpp_peer:LlamaCppBench"
ONNX_DEFAULT = "onnx-4w-a8-mixed"  # export/targets.py: the onnx target's default recipe
BLOCK, ACCURACY = 32, 4  # the ONNX peers: onnxruntime-genai's builder defaults for int4 on CPU


@dataclass
class Peer:
    key: str
    built_by: str
    kind: str  # how peer_quality scores it: pte | genai | gguf
    path: Path  # what the scorer opens
    subject: object  # runtime_py/bench.py Subject
    size_bytes: int  # the files the runtime loads
    weight_bytes: int  # read per decoded token (peer_floor.py)
    python: str | None = None  # the interpreter of the peer's own venv
    results: dict = field(default_factory=dict)


class Builders:
    """One method per peer, each building (or finding in the cache) its artifact and returning a Peer."""

    def __init__(self, cache: Path, threads: int, context: int, omp_wait_policy: str):
        from edgellama.default_model import default_model_path
        from edgellama.formats import open_checkpoint
        from edgellama.tokenizer import tokenizer_for

        self.cache, self.threads, self.context, self.omp_wait_policy = cache, threads, context, omp_wait_policy
        ckpt = open_checkpoint(default_model_path())
        self.tokenizer = tokenizer_for(ckpt)
        self.vocab, self.dim = ckpt.args.vocab_size, ckpt.args.dim
        self.ours_pte = None

    def _ours(self, key: str, folder: Path, kind: str) -> Peer:
        from edgellama.runtime.bench import artifact_subject

        manifest = json.loads((folder / "manifest.json").read_text())
        subject = artifact_subject(folder, self.threads, self.context, force_memory=False)
        subject.name = key
        model = folder / manifest["runtime"]["model_file"]
        weights = (peer_floor.pte_bytes(model, self.vocab, self.dim) if kind == "pte"
                   else peer_floor.onnx_bytes(model))
        return Peer(key, f"edgellama export --recipe {manifest['recipe']}", kind, model if kind == "pte" else folder,
                    subject, subject.about["model_bytes"], weights)

    def ours_pte_default(self) -> Peer:
        from decode_speed import ensure_ours

        self.ours_pte = self._ours("edgellama-pte", ensure_ours(self.cache, "xnnpack-8da4w"), "pte")
        return self.ours_pte

    def ours_pte_small(self) -> Peer:
        from decode_speed import ensure_ours

        return self._ours("edgellama-pte-small", ensure_ours(self.cache, "xnnpack-8da4w-small"), "pte")

    def ours_onnx(self) -> Peer:
        from onnx_decode_speed import ensure_ours

        return self._ours("edgellama-onnx", ensure_ours(self.cache, ONNX_DEFAULT, [])[0], "genai")

    def export_llm(self) -> Peer:
        from decode_speed import build_peer, peer_options

        from edgellama.runtime.bench import Subject

        if self.ours_pte is None:
            raise RuntimeError("needs edgellama's default .pte (its options and tokenizer), which did not build")
        mine = self.ours_pte.subject
        opts = peer_options(json.loads((Path(mine.about["artifact"]) / "manifest.json").read_text()))
        pte = build_peer(self.cache, opts) / "model.pte"
        size = pte.stat().st_size
        # the same TextLLMRunner worker, pointed at its .pte with our tokenizer file
        subject = Subject("export_llm", {**mine.spec, "model_file": str(pte)}, mine.tokenizer,
                          {**mine.about, "artifact": str(pte.parent), "recipe": None, "quantization": opts,
                           "artifact_bytes": size, "model_bytes": size})
        how = f"export_llm {opts['qmode']} g{opts['group_size']}, embedding {opts['embedding_quantize']}"
        return Peer("export_llm", how, "pte", pte, subject, size, peer_floor.pte_bytes(pte, self.vocab, self.dim))

    def _genai_peer(self, key: str, how: str, folder: Path) -> Peer:
        from edgellama.runtime.bench import Subject

        size = sum(f.stat().st_size for f in folder.iterdir() if f.name.startswith("model.onnx"))
        subject = Subject(key, {"runner": GENAI, "folder": str(folder), "threads": self.threads}, self.tokenizer,
                          {"artifact": str(folder), "runtime": "onnxruntime", "runner": "onnxruntime-genai",
                           "recipe": None, "quantization": {"bits": 4, "block_size": BLOCK, "accuracy_level": ACCURACY},
                           "artifact_bytes": size, "model_bytes": size})
        return Peer(key, how, "genai", folder, subject, size, peer_floor.onnx_bytes(folder / "model.onnx"))

    def genai_builder(self) -> Peer:
        from onnx_decode_speed import ensure_builder_model, ensure_hf_folder

        folder, _ = ensure_builder_model(self.cache, ensure_hf_folder(self.cache), BLOCK, ACCURACY)
        return self._genai_peer("genai-builder", f"onnxruntime_genai.models.builder -p int4 "
                                                  f"block_size={BLOCK} accuracy_level={ACCURACY}", folder)

    def optimum(self) -> Peer:
        from onnx_decode_speed import ensure_hf_folder
        from optimum_peer import ensure_optimum_model

        folder, _ = ensure_optimum_model(self.cache, ensure_hf_folder(self.cache), BLOCK, ACCURACY)
        return self._genai_peer("optimum-onnx", f"optimum-cli export onnx + MatMulNBitsQuantizer "
                                                f"block_size={BLOCK} accuracy_level={ACCURACY}", folder)

    def _llamacpp(self, quant: str) -> Peer:
        from llamacpp_peer import ensure_gguf, venv_python

        from edgellama.runtime.bench import Subject

        gguf, record = ensure_gguf(self.cache, quant, self.threads)
        python = str(venv_python(self.cache))
        size = gguf.stat().st_size
        spec = {"runner": LLAMACPP, "python": python, "gguf": str(gguf), "threads": self.threads, "n_ctx": self.context,
                "omp_wait_policy": self.omp_wait_policy}
        subject = Subject(f"llamacpp-{quant}", spec, self.tokenizer,
                          {"artifact": str(gguf), "runtime": "llama.cpp", "runner": "llama.cpp (llama-cpp-python)",
                           "recipe": None, "quantization": {"ftype": quant, "tensor_types": record["tensor_types"]},
                           "artifact_bytes": size, "model_bytes": size})
        return Peer(f"llamacpp-{quant}", f"llama.cpp llama_model_quantize {quant} from the fp32 GGUF", "gguf", gguf,
                    subject, size, peer_floor.gguf_bytes(gguf), python)

    def llamacpp_q4_0(self) -> Peer:
        return self._llamacpp("Q4_0")

    def llamacpp_q4_k_m(self) -> Peer:
        return self._llamacpp("Q4_K_M")


ORDER = ["edgellama-pte", "edgellama-pte-small", "edgellama-onnx", "export_llm", "genai-builder", "optimum-onnx",
         "llamacpp-Q4_0", "llamacpp-Q4_K_M"]


def build_all(b: Builders, skip: dict) -> tuple[list[Peer], dict]:
    makers = dict(zip(ORDER, [b.ours_pte_default, b.ours_pte_small, b.ours_onnx, b.export_llm, b.genai_builder,
                              b.optimum, b.llamacpp_q4_0, b.llamacpp_q4_k_m]))
    peers, skipped = [], {}
    for key, make in makers.items():
        if key in skip:
            skipped[key] = f"left out with --skip{': ' + skip[key] if skip[key] else ''}"
            continue
        print(f"== {key}: building or finding in the cache", flush=True)
        try:
            peers.append(make())
        except (Exception, SystemExit) as e:  # noqa: BLE001  the builders' scripts exit with a message
            skipped[key] = f"not built: {one_line(e)}"
            traceback.print_exc()
    return peers, skipped


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"[:300]


def preflight(peers: list[Peer], skipped: dict) -> list[Peer]:
    """Load each peer once on its own, so that one that cannot load is listed instead of ending the run."""
    from edgellama.runtime.bench import Worker

    kept = []
    for p in peers:
        try:
            Worker(p.subject).close()
            p.subject.loads.clear()
            p.subject.peak_rss_bytes = 0
            kept.append(p)
        except Exception as e:  # noqa: BLE001
            skipped[p.key] = f"does not load: {one_line(e)}"
    return kept


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2, help="measured runs per artifact per load-order rotation")
    # export_llm's .pte takes at most max_seq_len - 1 = 127 tokens per forward call
    ap.add_argument("--prompt-len", type=int, default=100)
    ap.add_argument("--gen-len", type=int, default=128)
    ap.add_argument("--windows", type=int, default=8, help="WikiText-2 test windows for perplexity and top-1")
    ap.add_argument("--ctx", type=int, default=512, help="tokens per window (each scored on its second half)")
    ap.add_argument("--skip", nargs="*", default=[], metavar="PEER[=REASON]",
                    help=f"leave a peer out (listed with the reason); peers: {', '.join(ORDER)}")
    ap.add_argument("--llamacpp-omp-wait", choices=["passive", "active"], default="passive",
                    help="OMP_WAIT_POLICY for llama.cpp's OpenMP threads (its default spins: see docs/bench.md)")
    ap.add_argument("--cache", type=Path, default=PEERS)
    ap.add_argument("--name", default="compare_peers-smollm2")
    a = ap.parse_args()
    if a.threads < 1 or a.runs < 1 or a.prompt_len > 127 or a.ctx > 512:
        print("error: --threads and --runs must be >= 1, --prompt-len <= 127 (export_llm's .pte takes at most 127 "
              "tokens a call), --ctx <= 512 (the .pte context)", file=sys.stderr)
        sys.exit(2)
    skip = dict(x.partition("=")[::2] for x in a.skip)
    unknown = set(skip) - set(ORDER)
    if unknown:
        print(f"error: --skip {', '.join(sorted(unknown))}: no such peer; peers: {', '.join(ORDER)}", file=sys.stderr)
        sys.exit(2)
    a.cache.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()

    builders = Builders(a.cache, a.threads, max(a.prompt_len + a.gen_len, a.ctx), a.llamacpp_omp_wait)
    peers, skipped = build_all(builders, skip)
    peers = preflight(peers, skipped)
    if not peers:
        sys.exit(f"compare_peers: nothing to measure: {skipped}")

    from edgellama.runtime.bench import Settings, measure

    print(f"== timing {len(peers)} artifacts, interleaved", flush=True)
    bandwidth = [peer_floor.read_bandwidth(a.threads)]
    timed = measure([p.subject for p in peers], Settings(a.prompt_len, a.gen_len, a.runs, 1, a.threads, None),
                    lambda msg: print("  " + msg, flush=True))
    bandwidth.append(peer_floor.read_bandwidth(a.threads))
    timed["read_bandwidth_gb_s"] = [round(b / 1e9, 2) for b in bandwidth]
    for p, r in zip(peers, timed["results"]):
        p.results = r

    print("== quality: perplexity and top-1 on WikiText-2 test", flush=True)
    wins = peer_quality.windows(a.windows, a.ctx)
    reference = peer_quality.fp32_reference(wins)
    ppl_fp32 = peer_quality.perplexity(reference)
    quality, quality_failed = {}, {}
    for p in peers:
        try:
            scored = peer_quality.score(p.kind, p.path, wins, p.python)
            quality[p.key] = {"ppl": peer_quality.perplexity(scored), "top1": peer_quality.top1_agreement(scored, reference)}
            print(f"  {p.key}: ppl {quality[p.key]['ppl']:.3f}, top-1 {quality[p.key]['top1']:.3f}", flush=True)
        except Exception as e:  # noqa: BLE001
            quality_failed[p.key] = one_line(e)

    import compare_peers_report

    record = compare_peers_report.record(a, peers, skipped, timed, quality, quality_failed, ppl_fp32, wins,
                                         load_start)
    rows, header, note = compare_peers_report.table(record)
    md = write_results(a.name, record, rows, header, note)
    compare_peers_report.chart(record, RESULTS / f"{a.name}.png")
    print(md.read_text())


if __name__ == "__main__":
    main()
