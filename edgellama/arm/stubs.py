"""Stand-ins for the CUDA libraries that PyPI's aarch64 torch wheel links (it is the CUDA build:
even libtorch_cpu.so needs libcudart). For each library a wheel needs but neither the wheel nor the
sysroot provides, an aarch64 shared library is assembled that defines exactly the symbols left
undefined (read with readelf): functions return an error code (so torch sees no GPU), data objects
are zero-filled, and C++ type_info objects are real ones (exception handling compares them).
None of them is ever asked to compute: the .pte runs on XNNPACK and portable CPU kernels."""
from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path

ERROR_CODE = {"cuda": 100, "cu": 100}  # cudaErrorNoDevice / CUDA_ERROR_NO_DEVICE; anything else: 1
RETURNS_TEXT = re.compile(r"(ErrorString|ErrorName|GetString)$")  # must return a readable pointer
OBJECT_BYTES = 256


def elf_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.so*") if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"]


def readelf(*args) -> str:
    return subprocess.run(["readelf", "-W", *map(str, args)], capture_output=True, text=True, check=True).stdout


def needed(path: Path) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf("-d", path))


def soname(path: Path) -> str | None:
    found = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", readelf("-d", path))
    return found.group(1) if found else None


def dynamic_symbols(path: Path):
    """-> (defined names, [(name, version or None, type, bind) undefined])."""
    defined, undefined = set(), []
    for line in readelf("--dyn-syms", path).splitlines():
        cols = line.split()
        if len(cols) < 8 or not cols[0].rstrip(":").isdigit():
            continue
        kind, bind, ndx, name = cols[3], cols[4], cols[6], cols[7]
        base, _, version = name.partition("@")
        version = version.lstrip("@") or None
        if ndx == "UND":
            if base:
                undefined.append((base, version, kind, bind))
        else:
            defined.add(base)
    return defined, undefined


def version_files(path: Path) -> dict[str, str]:
    """Version name -> the library that must provide it (.gnu.version_r)."""
    out, current = {}, None
    for line in readelf("-V", path).splitlines():
        file_line = re.search(r"File: (\S+)", line)
        if file_line:
            current = file_line.group(1)
        name_line = re.search(r"Name: (\S+)\s+Flags", line)
        if name_line and current:
            out[name_line.group(1)] = current
    return out


def unresolved(site: Path, sysroot: Path, say) -> dict[str, dict]:
    """-> {missing library: {"versions": {version: set(names)}, "kinds": {name: type}}}."""
    elves = elf_files(site)
    system = [p for d in ("lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu") for p in (sysroot / d).glob("*.so*")]
    available = {p.name for p in elves + system} | {s for p in elves if (s := soname(p))}
    say(f"reading the dynamic symbols of {len(elves)} wheel libraries")
    defined, wants = set(), []
    for p in elves + [p for p in system if p.is_file()]:
        d, u = dynamic_symbols(p)
        defined |= d
        if p in elves:
            missing = [n for n in needed(p) if n not in available]
            if missing:
                wants.append((p, missing, u))
    stubs: dict[str, dict] = defaultdict(lambda: {"versions": defaultdict(set), "kinds": {}})
    for p, missing, undefined in wants:
        for lib in missing:  # a library must exist to be loaded, even when nothing is bound to it
            stubs[lib]
        files = version_files(p)
        for name, version, kind, bind in undefined:
            if version in files and files[version] in missing:
                lib, node = files[version], version
            elif version is None and name not in defined and bind != "WEAK":
                lib, node = missing[0], None  # unversioned: the first missing library of the one needing it
            else:
                continue
            stubs[lib]["versions"][node].add(name)
            stubs[lib]["kinds"][name] = kind
    return stubs


def assembly(kinds: dict[str, str]) -> str:
    lines = [".text", ".Ltext: .asciz \"unavailable: CUDA stub library (edgellama arm64 emulation)\""]
    for i, (name, kind) in enumerate(sorted(kinds.items())):
        q = f'"{name}"'
        if name.startswith("_ZTI"):  # a class's type_info: vtable of __class_type_info, then its name
            lines += [".section .data.rel.ro", f".globl {q}", f".type {q}, %object", f".size {q}, 16", ".balign 8",
                      f"{q}: .quad _ZTVN10__cxxabiv117__class_type_infoE+16", f".quad .Lname{i}",
                      ".section .rodata", f".Lname{i}: .asciz \"{name[4:]}\""]
        elif kind == "OBJECT" or kind == "TLS":
            lines += [".data", f".globl {q}", f".type {q}, %object", f".size {q}, {OBJECT_BYTES}", ".balign 16",
                      f"{q}: .zero {OBJECT_BYTES}"]
        else:
            if RETURNS_TEXT.search(name):
                body = ["adrp x0, .Ltext", "add x0, x0, :lo12:.Ltext"]
            else:
                code = next((c for prefix, c in ERROR_CODE.items() if name.startswith(prefix)), 1)
                body = [f"mov w0, #{code}"]
            lines += [".text", f".globl {q}", f".type {q}, %function", ".balign 4", f"{q}:", *body, "ret"]
    return "\n".join(lines) + "\n"


def version_script(versions: dict) -> str | None:
    nodes = {v: names for v, names in versions.items() if v is not None}
    if not nodes:
        return None
    loose = versions.get(None, set())
    first = sorted(nodes)[0]
    return "".join(f"{v} {{ global: {''.join(n + '; ' for n in sorted(names | (loose if v == first else set())))}}};\n"
                   for v, names in sorted(nodes.items()))


def build_stubs(env, say) -> str:
    work = env.root / "stub-src"
    work.mkdir(parents=True, exist_ok=True)
    env.stubs.mkdir(parents=True, exist_ok=True)
    wanted = unresolved(env.site, env.sysroot, say)
    if not wanted:
        return "no stubs needed"
    for lib, info in sorted(wanted.items()):
        src, obj = work / f"{lib}.s", work / f"{lib}.o"
        src.write_text(assembly(info["kinds"]))
        subprocess.run(["aarch64-linux-gnu-as", "-o", str(obj), str(src)], check=True)
        link = ["aarch64-linux-gnu-ld", "-shared", "-soname", lib, "-o", str(env.stubs / lib), str(obj)]
        script = version_script(info["versions"])
        if script:
            (work / f"{lib}.map").write_text(script)
            link[1:1] = ["--version-script", str(work / f"{lib}.map")]
        subprocess.run(link, check=True)
    total = sum(len(i["kinds"]) for i in wanted.values())
    say(f"{len(wanted)} stub libraries, {total} symbols")
    return " ".join(f"{lib}:{len(i['kinds'])}" for lib, i in sorted(wanted.items()))
