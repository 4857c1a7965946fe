"""The eager twin of XNNPACK's dynamically quantized linears, to the last bit (x86 builds).

ExecuTorch lowers torchao's per-token int8 activation quantization to an XNNPACK "convert to
qdint8" node, and XNNPACK then computes each row's scale and zero point itself
(`xnn_qd8_asymmetric_quantization_params`), not as torchao does: the multiplier is a true fp32
division 255 / (max - min), the zero point comes from whichever end is nearer, and values are
clamped before rounding. Its GEMMs then combine exact int32 block sums with the scales in a fixed
float order. Matching only the quantization is not enough: an fp32 difference of 1e-6 upstream
moves an int8 code across a rounding boundary (measured on a tiny model: 0.18 max logit
difference with torchao's arithmetic, 3e-6 with this). Arm builds that route these ops to KleidiAI
round differently again, so bit-exactness is a property of the x86 build."""
from __future__ import annotations

import torch
from torch import nn

CHUNK = 16  # the packed kernels sum weights over 16-wide slices of K for the zero-point term


def f32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32)


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """XNNPACK's asymmetric per-row int8 quantization: (codes, dequant scale, zero point), floats."""
    lo = x.amin(-1, keepdim=True).clamp(max=0)
    hi = x.amax(-1, keepdim=True).clamp(min=0)
    # torch.full_like(...) / t is a true division; 255.0 / t would be computed as 255 * (1 / t)
    inv = torch.where(lo == hi, torch.ones_like(lo), torch.full_like(lo, 255.0) / (hi - lo))
    lo_code, hi_code = lo * inv, hi * inv
    zero = torch.where((-128.0 + lo_code) + (127.0 + hi_code) > 0, -128.0 - lo_code, 127.0 - hi_code)
    zero = torch.round(zero.clamp(-128.0, 127.0))
    q = torch.round(torch.clamp(x * inv, -128.0 - zero, 127.0 - zero)) + zero
    return q, 1.0 / inv, zero


class XnnpackLinear(nn.Module):
    """A linear with int8 per-channel or int4 blockwise weights and dynamic int8 activations,
    computed in the order of XNNPACK's qd8-f32-qc8w / qd8-f32-qb4w GEMMs."""

    def __init__(self, weight):
        super().__init__()
        q = weight.qdata.double()
        scale = weight.scale.float()
        n, k = q.shape
        self.per_channel = scale.shape[1] == 1
        self.register_buffer("w_scale", scale, persistent=False)
        if self.per_channel:
            self.register_buffer("q_t", q.T.contiguous(), persistent=False)
            return
        block = k // scale.shape[1]
        self.register_buffer("q_blocks", q.reshape(n, -1, block).permute(1, 2, 0).contiguous(), persistent=False)
        # kernel's -sum_k(q_w * s): one rounding per 16-wide slice, accumulated in order
        slices = f32(q.reshape(n, k // CHUNK, CHUNK).sum(-1))
        slice_scale = scale[:, torch.arange(k // CHUNK) * CHUNK // block]
        ksum = torch.zeros(n)
        for c in range(k // CHUNK):
            ksum = ksum - f32(slices[:, c] * slice_scale[:, c])
        self.register_buffer("ksum", ksum, persistent=False)

    def forward(self, x):
        shape = x.shape
        q, x_scale, zero = quantize_rows(x.reshape(-1, shape[-1]).float())
        if self.per_channel:
            acc = (q - zero).double() @ self.q_t  # exact integers
            out = f32(f32(acc) * x_scale) * self.w_scale.reshape(1, -1)
        else:
            blocks = q.double().reshape(q.shape[0], self.q_blocks.shape[0], -1).transpose(0, 1)
            sums = f32(torch.bmm(blocks, self.q_blocks)).double()  # [blocks, M, N], exact then rounded
            out = f32(self.ksum[None, :] * zero)
            scales = self.w_scale.double().T
            for b in range(sums.shape[0]):
                out = f32(sums[b] * scales[b] + out.double())  # fma: one rounding
            out = f32(out * x_scale)
        return out.reshape(*shape[:-1], -1)


def xnnpack_twin(model):
    """In place: dynamically quantized linears become XnnpackLinear, the rest as `quant.eager_twin`."""
    from torchao.quantization.quantize_.workflows.intx.intx_unpacked_to_int8_tensor import IntxUnpackedToInt8Tensor

    from edgellama.quant import eager_twin

    for name, module in list(model.named_modules()):
        weight = getattr(module, "weight", None)
        if isinstance(module, nn.Linear) and isinstance(weight, IntxUnpackedToInt8Tensor) \
                and weight.activation_quantization is not None:
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, leaf, XnnpackLinear(weight))
    return eager_twin(model)
