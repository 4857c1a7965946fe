"""The few adb calls `edgellama push` makes, with adb's failures turned into one-line errors."""
from __future__ import annotations

import shutil
import subprocess

from edgellama.errors import InputError

FULL = ("No space left on device", "ENOSPC")


class Device:
    """One device, by serial; every call goes through `adb -s SERIAL`."""

    def __init__(self, spec: str):
        if not spec.startswith("adb:") or len(spec) <= 4:
            raise InputError(f"--device {spec}: use adb:SERIAL, with SERIAL as `adb devices` lists it")
        self.serial = spec[4:]
        self.adb = shutil.which("adb")
        if self.adb is None:
            raise InputError("adb: not found on PATH; install Android's platform tools (Debian: apt-get install adb) "
                             "or put adb on PATH")
        self._check_attached()

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.adb, *args], capture_output=True, text=True)

    def _check_attached(self) -> None:
        listed = self._run("devices")
        if listed.returncode != 0:
            raise InputError(f"adb devices: failed ({(listed.stderr or listed.stdout).strip()}); restart the adb server "
                             f"(`adb kill-server`) and try again")
        states = dict(line.split(None, 1) for line in listed.stdout.splitlines()[1:] if len(line.split(None, 1)) == 2)
        states = {serial: state.strip() for serial, state in states.items()}
        if not states:
            raise InputError(f"--device adb:{self.serial}: no device attached; connect the phone with USB debugging on")
        if self.serial not in states:
            raise InputError(f"--device adb:{self.serial}: not attached (attached: {', '.join(sorted(states))}); "
                             f"pass one of those serials")
        if states[self.serial] != "device":
            raise InputError(f"--device adb:{self.serial}: is {states[self.serial]}; unlock the phone and accept the "
                             f"USB debugging prompt, then try again")

    def shell(self, command: str) -> str:
        done = self._run("-s", self.serial, "shell", command)
        if done.returncode != 0:
            self._fail(f"adb shell {command.split()[0]}", done)
        return done.stdout

    def push(self, local: str, remote: str) -> None:
        done = self._run("-s", self.serial, "push", local, remote)
        if done.returncode != 0:
            self._fail(f"adb push {local}", done)

    def _fail(self, what: str, done: subprocess.CompletedProcess) -> None:
        text = (done.stderr + done.stdout).strip()
        if any(marker in text for marker in FULL):
            raise InputError(f"adb:{self.serial}: device full while copying ({what}); free space on the phone and "
                             f"push again (finished files are kept)")
        raise InputError(f"{what}: failed on adb:{self.serial} ({text.splitlines()[-1] if text else 'no output'}); "
                         f"check the connection and push again")
