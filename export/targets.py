"""The export targets, in one table: what `--target NAME` exports with, which recipe it defaults to,
and how the artifact is opened again. Adding a target is one entry here, its exporter module
(`check_options(options)`, `write_model(model, tokenizer, options, folder, say) -> runtime metadata`)
and its recipes. Torch-free: the CLI reads this table for its help and checks.

ARCHES lists the other CPU architectures an artifact can be run on from this machine (`parity --arch`);
a target that runs there names its session for it in `arches`."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    name: str
    exporter: str  # module of edgellama.export
    default_recipe: str
    runtime: str  # manifest runtime.runtime, which picks the session below
    session: str  # "module:function(folder, manifest, tokenizer) -> Session"
    logits: str  # default --logits: "last" or "all"
    help: str
    twin: str | None = None  # "module:function(folder, manifest, tokenizer) -> Session"; None: the eager twin
    defaults: dict = field(default_factory=dict)  # option defaults only this target has
    # "module:Class" timing generation the way the runtime's own apps run it (`edgellama bench`);
    # None: through the session above, with edgellama's generation loop.
    bench: str | None = None
    # arch name (ARCHES) -> "module:Class(folder, manifest, tokenizer, cpu=, say=) -> Session" running the
    # artifact on that architecture's kernels; absent: the artifact runs on this machine only.
    arches: dict = field(default_factory=dict)
    # True: write_model reads model.layers in order and replaces each layer with an empty module once it
    # is written, so the driver hands it layers rebuilt one by one from a spill file (layerwise.py) and
    # the export's peak is a few layers; False: the whole quantized model is in memory (torch.export).
    streams_layers: bool = False
    # How the spill holds a streamed model (edgellama/spill.py): "packed" for a writer that walks the
    # layers and drops each, "mapped" for one that needs every layer at once (torch.export): the layers
    # then hold views of the file and write_model calls `model.layers.evict()` once it has read some.
    spill_layout: str = "packed"


@dataclass(frozen=True)
class Arch:
    name: str
    prepare: str  # "module:function(cpu)": refuses a bad --cpu or a missing environment before any model loads
    help: str
    parity_defaults: dict = field(default_factory=dict)  # smaller `parity` defaults where it runs slowly


ARCHES = {a.name: a for a in (
    # Emulated: ~0.3 s per decode step of SmolLM2 on 2 cores, so parity's defaults shrink (docs/arm64.md).
    Arch("arm64", "edgellama.arm.checks:prepare", "the runtimes' aarch64 builds under user-mode QEMU (`make arm-env`)",
         parity_defaults={"prompts": 4, "windows": 2, "gen_tokens": 32}),
)}


TARGETS = {t.name: t for t in (
    Target("xnnpack", "edgellama.export.executorch_xnnpack", "xnnpack-8da4w", "executorch",
           "edgellama.runtime.executorch_session:ExecuTorchSession", "last", "ExecuTorch .pte for ARM CPUs (XNNPACK)",
           bench="edgellama.runtime.bench_textllm:TextLLMBench", arches={"arm64": "edgellama.arm.session:ArmExecuTorchSession"},
           streams_layers=True, spill_layout="mapped"),
    Target("onnx", "edgellama.export.onnx_cpu", "onnx-4w-a8-mixed", "onnxruntime",
           "edgellama.runtime.onnx_session:OnnxSession", "all", "ONNX Runtime on CPU (MatMulNBits)",
           defaults={"accuracy_level": 1}, bench="edgellama.runtime.bench_genai:GenAIBench",
           arches={"arm64": "edgellama.arm.session:ArmOnnxSession"}, streams_layers=True),
    Target("qnn", "edgellama.export.qnn_htp", "qnn-a16w4", "onnxruntime-qnn",
           "edgellama.runtime.qnn_session:htp_session", "all",
           "Snapdragon NPU: Hexagon HTP through ONNX Runtime's QNN EP (--soc)",
           twin="edgellama.runtime.qnn_session:cpu_twin", defaults={"soc": "SM8650", "contexts": "both", "kv_bits": 8}),
)}


def load(ref: str):
    """`module:name` -> the object."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def by_runtime(runtime: str) -> Target | None:
    return next((t for t in TARGETS.values() if t.runtime == runtime), None)
