"""The emulated CPUs `--cpu` may pick, and the ones refused with the reason measured on QEMU 7.2.
XNNPACK chooses its aarch64 kernels from the CPU features the emulated CPU reports."""
from __future__ import annotations

from edgellama.errors import InputError

DEFAULT = "neoverse-n1"
# name -> (QEMU -cpu argument, what it has)
PROFILES = {
    "neoverse-n1": ("neoverse-n1", "Armv8.2 with dotprod (Cortex-A76 class: most phones since 2019)"),
    "max-nosme": ("max,sme=off", "QEMU's newest Armv9 features (i8mm, SVE2, bf16) without SME"),
}
REFUSED = {
    "max": "QEMU 7.2's SME emulation returns wrong logits (correlation 0.15 with the other profiles); "
           "use max-nosme",
    "cortex-a57": "Armv8.0: PyPI's aarch64 torch needs Armv8.2 and dies with SIGILL at import; use neoverse-n1",
    "cortex-a53": "Armv8.0: PyPI's aarch64 torch needs Armv8.2 and dies with SIGILL at import; use neoverse-n1",
}
RAW = "qemu:"  # qemu:MODEL passes MODEL to -cpu unchecked (for trying CPUs not listed above)


def qemu_cpu(profile: str | None) -> str:
    """--cpu value -> QEMU's -cpu argument, or an input error naming the choices."""
    profile = profile or DEFAULT
    if profile.startswith(RAW) and len(profile) > len(RAW):
        return profile[len(RAW):]
    if profile in PROFILES:
        return PROFILES[profile][0]
    choices = ", ".join(PROFILES)
    if profile in REFUSED:
        raise InputError(f"--cpu {profile}: refused, {REFUSED[profile]}")
    raise InputError(f"--cpu {profile}: unknown CPU profile; use one of {choices} (or qemu:MODEL, unchecked)")
