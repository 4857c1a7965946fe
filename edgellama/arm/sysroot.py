"""The guest's root folder: Debian bookworm's arm64 Python 3.11 and the libraries it and the wheels
load, downloaded as .debs with apt-get (its own state under the cache, so the host's dpkg is not
given a foreign architecture) and unpacked with dpkg -x. QEMU finds them through QEMU_LD_PREFIX."""
from __future__ import annotations

import subprocess
from pathlib import Path

PACKAGES = ("libc6 libcrypt1 libgcc-s1 gcc-12-base libstdc++6 libgomp1 libatomic1 zlib1g libbz2-1.0 liblzma5 "
            "libexpat1 libffi8 libssl3 libsqlite3-0 libncursesw6 libtinfo6 libreadline8 libuuid1 libnsl2 "
            "libtirpc3 libdb5.3 libgssapi-krb5-2 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 "
            "libcom-err2 libpython3.11-minimal libpython3.11-stdlib python3.11-minimal python3.11 media-types").split()

# QEMU 7.2 hands the guest the host's x86 /proc/cpuinfo, on which PyTorch's cpuinfo crashes; QEMU
# serves files under QEMU_LD_PREFIX first, so an ARM one is placed there. It describes a Neoverse N1
# (dotprod, no i8mm); XNNPACK picks its kernels from the CPU's hwcaps, which QEMU sets from -cpu,
# not from this file.
CPUINFO = """processor\t: {n}
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""


def apt(env, *args: str) -> list[str]:
    """apt-get with its lists and downloads under the cache and arm64 as its only architecture."""
    state = env.root / "apt"
    for sub in ("lists/partial", "archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    return ["apt-get", "-q", "-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64",
            "-o", f"Dir::State::Lists={state / 'lists'}", "-o", f"Dir::Cache={state}",
            "-o", "Dir::State::status=/dev/null",
            "-o", "APT::Sandbox::User=root", *args]  # _apt cannot write into the cache folder


def build_sysroot(env, say) -> str:
    debs = env.root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    say("apt-get update (arm64 package lists, under the cache)")
    subprocess.run(apt(env, "update"), check=True, stdout=subprocess.DEVNULL)
    have = {p.name.split("_")[0] for p in debs.glob("*.deb")}
    wanted = [p for p in PACKAGES if p not in have]
    if wanted:
        say(f"apt-get download {len(wanted)} arm64 packages")
        subprocess.run(apt(env, "download", *wanted),  # arm64 is this apt's native architecture
                       check=True, cwd=debs, stdout=subprocess.DEVNULL)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(env.sysroot)], check=True)
    proc = env.sysroot / "proc"
    proc.mkdir(exist_ok=True)
    (proc / "cpuinfo").write_text("\n".join(CPUINFO.format(n=n) for n in range(2)))
    if not env.python.is_file():
        raise RuntimeError(f"{env.python} missing after unpacking the .debs")
    return " ".join(sorted(p.name for p in debs.glob("*.deb")))
