"""`edgellama push BUNDLE --device adb:SERIAL`: a bundle folder -> /data/local/tmp/edgellama/NAME/.

Files the device already holds with the same sha256 are skipped, so a second push copies nothing and
a push killed midway resumes where it stopped. Each file goes to a `.partial` name and is renamed
when complete; the bundle's manifest.json is removed first and pushed last, so the app never takes a
half-pushed folder for a bundle."""
from __future__ import annotations

from pathlib import Path

from edgellama.errors import InputError
from edgellama.export.artifact import MANIFEST

from .adb import Device
from .bundle import read_bundle

REMOTE_ROOT = "/data/local/tmp/edgellama"


def remote_hashes(device: Device, remote: str) -> dict[str, str]:
    """path relative to `remote` -> sha256, for every file already there (toybox and coreutils print
    '<sha256>  ./path')."""
    out = device.shell(f"cd {remote} && find . -type f ! -name '*.partial' -exec sha256sum {{}} +")
    hashes = {}
    for line in out.splitlines():
        digest, _, path = line.strip().partition("  ")
        if path.startswith("./"):
            hashes[path[2:]] = digest
    return hashes


def free_bytes(device: Device, remote: str) -> int:
    """Available bytes on the file system holding `remote` (`df -k`: the 4th column of the last line)."""
    lines = device.shell(f"df -k {remote}").strip().splitlines()
    try:
        return int(lines[-1].split()[3]) * 1024
    except (IndexError, ValueError):
        raise InputError(f"adb:{device.serial}: cannot read free space from `df -k {remote}`; push again") from None


def push(bundle: Path, device_spec: str, say=lambda _msg: None) -> dict:
    bundle = Path(bundle)
    if bundle.suffix == ".zip":
        raise InputError(f"{bundle}: push takes a bundle folder; unzip it first (it holds one folder, NAME/)")
    manifest = read_bundle(bundle)  # local files verified before anything is sent
    device = Device(device_spec)
    remote = f"{REMOTE_ROOT}/{manifest['name']}"
    device.shell(f"mkdir -p {remote} && rm -f {remote}/{MANIFEST} && find {remote} -name '*.partial' -exec rm -f {{}} +")
    held = remote_hashes(device, remote)
    todo = [f for f in manifest["files"] if held.get(f["path"]) != f["sha256"]]
    needed = sum(f["bytes"] for f in todo)
    free = free_bytes(device, remote)
    if needed > free:
        raise InputError(f"adb:{device.serial}: device full: {needed / 2**20:.0f} MiB to copy, {free / 2**20:.0f} MiB "
                         f"free under {REMOTE_ROOT}; free space on the phone and push again")
    for folder in sorted({str(Path(f["path"]).parent) for f in todo} - {"."}):
        device.shell(f"mkdir -p {remote}/{folder}")
    for f in todo:
        say(f"pushing {f['path']} ({f['bytes'] / 2**20:.1f} MiB)")
        target = f"{remote}/{f['path']}"
        device.push(str(bundle / f["path"]), f"{target}.partial")
        device.shell(f"mv {target}.partial {target}")
    device.push(str(bundle / MANIFEST), f"{remote}/{MANIFEST}")
    # The app runs as another user than adb's shell: it needs to list the folders and read the files.
    device.shell(f"chmod 775 {REMOTE_ROOT} && find {remote} -type d -exec chmod 775 {{}} + && "
                 f"find {remote} -type f -exec chmod 664 {{}} +")
    return {"device": device.serial, "remote": remote, "pushed": [f["path"] for f in todo],
            "skipped": len(manifest["files"]) - len(todo), "bytes_pushed": needed}
