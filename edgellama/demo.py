"""`make demo`: the main job on the embedded default model, end to end.

1. export SmolLM2-135M-Instruct with the default recipe (ExecuTorch, XNNPACK, 8da4w) — once; later
   runs reuse the artifact if its manifest still verifies;
2. answer a chat prompt through ExecuTorch's own C++ runner (TextLLMRunner);
3. say where the artifact is and how far it drifts from the fp32 model, teacher-forced on WikiText-2."""
from __future__ import annotations

import time
from pathlib import Path

# In the working folder: `make demo` runs in the checkout (artifacts/ is git-ignored there), and an
# installed package must not write beside itself in site-packages.
ARTIFACT = Path("artifacts") / "smollm2-xnnpack-8da4w"


def say(msg: str) -> None:
    print(f"\n== {msg}", flush=True)


RECIPE = "xnnpack-8da4w"


def export_once() -> None:
    """Export unless the artifact exists, verifies, and was made with the current recipe."""
    from .export import load_recipe
    from .export.artifact import verifies_with_recipe

    if verifies_with_recipe(ARTIFACT, RECIPE):
        say(f"reusing {ARTIFACT} (delete it to export again)")
        return
    say(f"exporting SmolLM2-135M-Instruct with recipe {RECIPE}")
    from .default_model import default_model_path
    from .export import ExportOptions, export

    # --force: an artifact of an older recipe is replaced (export only ever replaces one that verifies)
    export(default_model_path(), ExportOptions(**load_recipe(RECIPE)), ARTIFACT, force=True,
           progress=lambda stage: print(f"   {stage}", flush=True))


def main() -> None:
    t0 = time.perf_counter()
    export_once()

    from .runtime.textllm import run_textllmrunner
    from .runtime.open import open_artifact

    session, manifest = open_artifact(ARTIFACT)
    question = "What is the capital of France? Answer in one sentence."
    say(f"TextLLMRunner, chat: {question!r}")
    pieces, stats = run_textllmrunner(ARTIFACT, session.tokenizer.chat_prompt(question), 48)
    answer = "".join(pieces)
    for eos in manifest["tokenizer"]["eos_ids"]:
        answer = answer.replace(session.tokenizer.id_to_piece(eos), "")
    print(f"\n[answer] {answer.strip()}")
    print(f"[runner] prefill {stats.get('prefill_token_per_sec', 0):.0f} tok/s, "
          f"decode {stats.get('decode_token_per_sec', 0):.0f} tok/s")

    say("drift from the fp32 model (teacher-forced, 256 tokens of WikiText-2 test)")
    import edgellama

    from .runtime.parity import compare
    from .runtime.session import EagerSession

    from .texts import evaluation_text

    text = evaluation_text().read_text()[:20000]
    ids = session.tokenizer.encode(text)[:256]
    reference = EagerSession(edgellama.load_model(manifest["source"]["path"]), None, len(ids) + 1)
    d = compare(reference, session, ids)
    size = manifest["files"][manifest["runtime"]["model_file"]]["bytes"] / 2**20
    print(f"artifact: {ARTIFACT}  ({size:.1f} MiB .pte, {manifest['runtime']['delegation']['delegate_calls']} XNNPACK partitions)")
    print(f"vs fp32: top-1 agreement {d.top1_agreement:.2f}, top-5 overlap {d.top5_overlap:.2f}, "
          f"KL {d.kl_mean:.3f} nats/token, perplexity {d.ppl_reference:.1f} (fp32) -> {d.ppl_artifact:.1f} (.pte)")
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
