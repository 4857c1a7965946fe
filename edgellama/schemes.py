"""Quantization scheme names (as ExecuTorch users know them) and artifact size estimates.
Torch-free so that `inspect` and the CLI's argument checks stay cheap."""
from __future__ import annotations

from .model import ModelArgs

# scheme -> (bits per transformer-linear weight, activations quantized dynamically?)
SCHEMES = {
    "fp32": (32, False), "fp16": (16, False), "bf16": (16, False),
    "8w": (8, False), "4w": (4, False), "8da4w": (4, True), "8da8w": (8, True),
}
GROUP_SIZES = (32, 64, 128, 256, 0)  # 0 = per-channel
HEAD_WIDTHS = ("8w", "4w")  # the output head of int4 schemes: per-channel int8, or int4 in groups


def head_scheme(scheme: str, head: str) -> str:
    """The output head's scheme for an int4 `scheme` and a head width from HEAD_WIDTHS: dynamic int8
    activations exactly when the transformer linears have them ("8da4w" + "4w" -> "8da4w"); the
    head of other schemes stays as loaded ("none")."""
    if head not in HEAD_WIDTHS:
        from .errors import InputError

        raise InputError(f"--output-quant {head}: use 8w (per-channel) or 4w (groups of --group-size)")
    if scheme not in ("8da4w", "4w"):
        return "none"
    return ("8da" if SCHEMES[scheme][1] else "") + head


def linear_shapes(args: ModelArgs) -> list[tuple[str, int, int]]:
    """(name, out_features, in_features) of every transformer linear (not the output head)."""
    hd = args.head_dim
    per_layer = [("attention.wq", args.n_heads * hd, args.dim), ("attention.wk", args.n_kv_heads * hd, args.dim),
                 ("attention.wv", args.n_kv_heads * hd, args.dim), ("attention.wo", args.dim, args.n_heads * hd),
                 ("feed_forward.w1", args.hidden_dim, args.dim), ("feed_forward.w3", args.hidden_dim, args.dim),
                 ("feed_forward.w2", args.dim, args.hidden_dim)]
    return [(f"layers.{i}.{n}", o, k) for i in range(args.n_layers) for n, o, k in per_layer]


def weight_bytes(out_f: int, in_f: int, bits: int, group_size: int) -> float:
    """Bytes of one weight matrix: packed values plus one 2-byte scale per group (per row if 0)."""
    if bits >= 16:
        return out_f * in_f * bits / 8
    groups = in_f // group_size if group_size else 1
    return out_f * in_f * bits / 8 + out_f * groups * 2


def estimate_bytes(args: ModelArgs, scheme: str, group_size: int = 32, embedding_bits: int | None = None) -> int:
    """Approximate artifact size. Int4 recipes keep embedding and output head at 8-bit per-channel,
    as ExecuTorch's mobile recipes do."""
    bits, _ = SCHEMES[scheme]
    emb_bits = embedding_bits or (8 if bits < 16 else bits)
    total = sum(weight_bytes(o, k, bits, group_size) for _, o, k in linear_shapes(args))
    emb = weight_bytes(args.vocab_size, args.dim, emb_bits, 0)
    total += emb if args.tie_embeddings else 2 * emb
    total += (2 * args.n_layers + 1) * args.dim * 4  # norms stay fp32
    return int(total)
