"""Bad export requests fail fast with one line, exit 2, and leave nothing behind."""
from __future__ import annotations

import subprocess

import pytest

from checkpoints import odd_width_hf, write_meta
from conftest import run_cli
from test_bad_input import assert_input_error


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tiny_hf, sp_model):
    return write_meta(tmp_path_factory.mktemp("exp") / "meta", tiny_hf.state_dict(), 1, tokenizer=sp_model)


def export(ckpt, out, *args):
    return run_cli("export", "--model", ckpt, "--out", out, *args)


def leftovers(folder):
    return [p.name for p in folder.iterdir()] if folder.exists() else []


def test_unknown_target(ckpt, tmp_path):
    assert_input_error(export(ckpt, tmp_path / "o", "--target", "coreml"), "--target coreml", "xnnpack")
    assert leftovers(tmp_path) == []


def test_unknown_scheme(ckpt, tmp_path):
    assert_input_error(export(ckpt, tmp_path / "o", "--quant", "3bit"), "--quant 3bit", "8da4w")


def test_group_size_that_divides_nothing(ckpt, tmp_path):
    # the tiny model's inputs are 96 and 352 wide: 64 divides neither
    assert_input_error(export(ckpt, tmp_path / "o", "--group-size", "64"), "--group-size 64",
                       "layers.0.attention.wq", "use 32")
    assert leftovers(tmp_path) == []


def test_group_size_not_in_the_list(ckpt, tmp_path):
    assert_input_error(export(ckpt, tmp_path / "o", "--group-size", "48"), "--group-size 48", "32, 64, 128")


def test_max_seq_len_beyond_context(ckpt, tmp_path):
    assert_input_error(export(ckpt, tmp_path / "o", "--max-seq-len", "100000"), "--max-seq-len 100000", "context")


def test_weight_only_scheme_refused_on_xnnpack(ckpt, tmp_path):
    assert_input_error(export(ckpt, tmp_path / "o", "--quant", "4w"), "--quant 4w", "8da4w")


@pytest.mark.parametrize("args,option,fix", [
    (("--quant", "8da4w"), "--quant 8da4w", "use --quant 4w"),
    (("--quant", "8da8w"), "--quant 8da8w", "use --quant 8w"),
    (("--quant", "bf16"), "--quant bf16", "use --quant fp32"),
    (("--accuracy-level", "7"), "--accuracy-level 7", "4 (int8)"),
    (("--dtype", "bf16"), "--dtype bf16", "--dtype fp32"),
])
def test_onnx_refuses_what_it_cannot_represent(ckpt, tmp_path, args, option, fix):
    assert_input_error(export(ckpt, tmp_path / "o", "--target", "onnx", *args), option, fix)
    assert leftovers(tmp_path) == []


def test_unknown_output_head_scheme(ckpt, tmp_path):
    assert_input_error(export(ckpt, tmp_path / "o", "--output-quant", "2w"), "--output-quant 2w", "4w")
    assert leftovers(tmp_path) == []


def test_logits_choice(ckpt, tmp_path):
    assert_input_error(export(ckpt, tmp_path / "o", "--logits", "first"), "--logits first", "last")
    assert_input_error(export(ckpt, tmp_path / "o", "--target", "onnx", "--logits", "last"), "--logits last",
                       "--logits all")
    assert leftovers(tmp_path) == []


def test_shared_embedding_table_is_onnx_only(ckpt, tmp_path):
    assert_input_error(export(ckpt, tmp_path / "o", "--embedding-quant", "head"), "--embedding-quant head", "8w")
    assert leftovers(tmp_path) == []


def test_accuracy_level_is_onnx_only(ckpt, tmp_path):
    assert_input_error(export(ckpt, tmp_path / "o", "--accuracy-level", "4"), "--accuracy-level 4", "--target onnx")
    assert leftovers(tmp_path) == []


def test_existing_output_folder_needs_force(ckpt, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_input_error(export(ckpt, out), str(out), "--force")
    assert leftovers(out) == ["keep.txt"]


def test_unknown_recipe(ckpt, tmp_path):
    assert_input_error(export(ckpt, tmp_path / "o", "--recipe", "nope"), "nope", "xnnpack-8da4w")


def mounted_tmpfs(folder, options: str):
    """A real small filesystem (tmpfs; needs root, which CI and the dev machines are)."""
    folder.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip()}); the check needs one")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def tiny_disk(tmp_path):
    yield from mounted_tmpfs(tmp_path / "tinyfs", "size=1M")


def test_no_disk_space(ckpt, tiny_disk):
    out = tiny_disk / "artifact"
    assert_input_error(export(ckpt, out), str(tiny_disk), "free", "MiB")
    assert leftovers(tiny_disk) == []


def test_unknown_quant_algo(ckpt, tmp_path):
    assert_input_error(export(ckpt, tmp_path / "o", "--quant-algo", "magic"), "--quant-algo magic", "rtn")
    assert leftovers(tmp_path) == []


def test_package_import_is_cheap():
    """`import edgellama` must not import torch (the CLI imports heavy things inside each verb)."""
    import sys as _sys

    res = subprocess.run([_sys.executable, "-c", "import sys, edgellama, edgellama.cli; "
                          "print('torch' in sys.modules)"], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


# --force replaces an artifact, never the user's files (each case: the files survive).

def test_force_never_replaces_the_source_checkpoint(ckpt):
    before = sorted(p.name for p in ckpt.iterdir())
    assert_input_error(export(ckpt, ckpt, "--force"), str(ckpt), "source checkpoint")
    assert sorted(p.name for p in ckpt.iterdir()) == before


def test_force_never_replaces_a_folder_holding_the_source(ckpt):
    assert_input_error(export(ckpt, ckpt.parent, "--force"), str(ckpt.parent), "source checkpoint")
    assert ckpt.exists()


def test_force_never_replaces_the_working_directory(ckpt, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    assert_input_error(export(ckpt, ".", "--force"), str(work), "working directory")
    assert (work / "notes.txt").read_text() == "mine"


def test_force_never_replaces_a_user_folder(ckpt, tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "cat.jpg").write_bytes(b"\xff\xd8 not really")
    assert_input_error(export(ckpt, out, "--force"), str(out), "not an edgellama artifact")
    assert leftovers(out) == ["cat.jpg"]


def test_force_onto_a_file_is_refused_up_front(ckpt, tmp_path):
    out = tmp_path / "file.txt"
    out.write_text("mine")
    assert_input_error(export(ckpt, out, "--force"), str(out), "is a file")
    assert out.read_text() == "mine"


def test_force_replaces_an_artifact_and_dead_exports_are_swept(ckpt, tmp_path):
    """An existing empty folder is filled without --force; --force replaces a verified artifact; a
    staging folder left by a killed export (its pid gone) is removed by the next export beside it."""
    out = tmp_path / "art"
    out.mkdir()
    fast = ("--target", "onnx", "--quant", "fp32", "--max-seq-len", "16")
    code, _, err = export(ckpt, out, *fast)
    assert code == 0, err
    (out / "from-the-first-export").touch()  # not listed in the manifest: gone once the folder is replaced
    dead = tmp_path / ".art.partial-999999999-deadbeef"  # beyond pid_max: no such process
    dead.mkdir()
    (dead / "model.onnx.data").write_bytes(b"0" * 1024)
    code, _, err = export(ckpt, out, *fast, "--force")
    assert code == 0, err
    assert (out / "manifest.json").exists() and not (out / "from-the-first-export").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_out_under_a_file_is_refused_up_front(ckpt, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert_input_error(export(ckpt, tmp_path / "notes.txt" / "art"), "--out", "notes.txt is a file")
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.fixture
def read_only_fs(tmp_path):
    yield from mounted_tmpfs(tmp_path / "rofs", "ro,size=1M")


def test_out_on_a_read_only_filesystem_is_refused_up_front(ckpt, read_only_fs):
    assert_input_error(export(ckpt, read_only_fs / "a" / "art"), "--out", "cannot write in", "Read-only file system")


@pytest.mark.parametrize("content, words", [
    (b'target = "xnnpack"\nmax_seq_len = 12.5\n', ["max_seq_len = 12.5", "not an integer"]),
    (b'quant = 8\n', ["quant = 8", "not a string"]),
    (b'size_budget = "big"\n', ["size_budget", "not a number"]),
    ('quant = "8da4w" # caf\xe9\n'.encode("latin-1"), ["not UTF-8", "save the recipe as UTF-8"]),
])
def test_malformed_recipe(ckpt, tmp_path, content, words):
    recipe = tmp_path / "mine.toml"
    recipe.write_bytes(content)
    assert_input_error(export(ckpt, tmp_path / "o", "--recipe", recipe), "mine.toml", *words)
    assert leftovers(tmp_path) == ["mine.toml"]


def test_8da8w_with_a_group_size_given_is_refused_up_front(ckpt, tmp_path):
    """XNNPACK has int8 weights per channel only; this failed inside the delegate after the work."""
    assert_input_error(export(ckpt, tmp_path / "o", "--quant", "8da8w", "--group-size", "32"),
                       "--quant 8da8w --group-size 32", "per channel", "--group-size 0")


def test_recipe_context_over_the_models_is_adjusted_not_blamed_on_an_option_never_passed():
    from edgellama.export import ExportOptions, load_recipe

    options = ExportOptions(**load_recipe("xnnpack-8da4w")).validate(256)  # recipe: 128 / 512
    assert (options.max_seq_len, options.max_context_len) == (128, 256)
    assert options.notes == ["max_context_len 512 (recipe xnnpack-8da4w) exceeds the model's context of 256: using 256"]
    given = ExportOptions(**{**load_recipe("xnnpack-8da4w"), "max_context_len": 512}, given=frozenset({"max_context_len"}))
    with pytest.raises(Exception, match="--max-context-len 512"):
        given.validate(256)


def test_kv_cache_that_cannot_fit_is_refused_before_the_export(tmp_path, tiny_hf, sp_model):
    import json

    from checkpoints import write_hf

    path = write_hf(tmp_path / "long", tiny_hf, tokenizer=sp_model)
    cfg = json.loads((path / "config.json").read_text())
    cfg["max_position_embeddings"] = 100_000_000
    (path / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "o"
    assert_input_error(export(path, out, "--max-seq-len", "32", "--max-context-len", "100000000"),
                       "not enough memory", "KV cache of 100000000 positions", "--force-memory")
    assert not out.exists()


def test_8da8w_default_group_size_is_adjusted_and_lowering_reports_progress(ckpt, tmp_path):
    """The recipe's group size 32 becomes per-channel for 8da8w, saying so; the export then runs through
    the XNNPACK delegate, printing a line per layer and per partition with its duration and the total."""
    out = tmp_path / "o"
    code, _, err = export(ckpt, out, "--quant", "8da8w", "--quant-algo", "rtn", "--size-budget", "1.0",
                          "--max-seq-len", "32", "--max-context-len", "64")
    assert code == 0, err
    assert "note: group_size 32 (recipe xnnpack-8da4w) does not apply to 8da8w" in err and "using 0" in err
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["quantization"]["group_size"] == 0
    n = manifest["runtime"]["delegation"]["delegate_calls"]
    assert f"lowering to XNNPACK: partition {n}/{n}" in err
    assert "to_executorch" in err and " s]" in err
    assert "quantizing layer 0 of " in err  # a line per layer (with the time left from the fourth on: test_eta)


def test_int4_on_widths_xnnpack_cannot_take_is_refused_up_front(tmp_path, sp_model):
    """Input width 80: no group size divides it, and --group-size 0 (what the group-size error used to
    suggest) failed inside the XNNPACK delegate after the quantization."""
    path = odd_width_hf(tmp_path / "w80", sp_model)
    for g in ("32", "0"):
        assert_input_error(export(path, tmp_path / "o", "--quant", "8da4w", "--group-size", g),
                           "--quant 8da4w", "multiple of 32", "has 80", "--quant 8da8w")
    assert not (tmp_path / "o").exists()


def test_fp32_is_not_refused_for_a_group_size_it_does_not_use(tmp_path, sp_model):
    """The default recipe's group size 32 divides none of this model's widths; fp32 has no groups, so
    the export goes through (it was refused with the group-size error)."""
    out = tmp_path / "o"
    code, _, err = export(odd_width_hf(tmp_path / "w80", sp_model), out, "--quant", "fp32", "--max-seq-len", "16",
                          "--max-context-len", "32")
    assert code == 0, err
    assert "group" not in err.lower(), err
    assert (out / "model.pte").is_file()


def test_sigkilled_export_leaves_staging_that_the_next_export_removes(ckpt, tmp_path):
    """A real SIGKILL mid-export: only a hidden staging folder is left (nothing complete-looking at
    --out), and the next export to the same parent removes it because its pid is gone."""
    import os
    import signal
    import sys
    import time

    out = tmp_path / "art"
    args = ("--target", "onnx", "--quant", "fp32", "--max-seq-len", "16", "--max-context-len", "32")
    proc = subprocess.Popen([sys.executable, "-m", "edgellama.cli", "export", "--model", str(ckpt), "--out", str(out),
                             *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob(".art.partial-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the export finished before it could be killed"
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == [".art.partial"] and not out.exists()
    code, _, err = export(ckpt, out, *args)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_loser_of_two_exports_to_the_same_out_gets_one_line_and_leaves_nothing(tmp_path):
    """Both exports passed the up-front checks; the other one renamed its folder into place first."""
    from edgellama.errors import InputError
    from edgellama.export.artifact import staging

    out = tmp_path / "art"
    with pytest.raises(InputError, match="another export finished there first"):
        with staging(out, force=False) as folder:
            (folder / "model.pte").write_bytes(b"ours")
            out.mkdir()
            (out / "model.pte").write_bytes(b"theirs")  # the winner's artifact
    assert (out / "model.pte").read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


@pytest.fixture
def very_tiny_disk(tmp_path):
    yield from mounted_tmpfs(tmp_path / "verytiny", "size=128k")


def test_disk_full_during_the_onnx_write(ckpt, very_tiny_disk, monkeypatch):
    """The up-front estimate is fooled (another process fills the disk meanwhile): the write itself
    fails with ENOSPC, which is one line and exit 2, and nothing is left on the disk."""
    import collections

    import edgellama.export.artifact as artifact

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(artifact.shutil, "disk_usage", lambda _p: usage(1 << 40, 0, 1 << 40))
    out = very_tiny_disk / "artifact"
    assert_input_error(export(ckpt, out, "--target", "onnx", "--quant-algo", "rtn", "--max-seq-len", "32",
                              "--max-context-len", "64"), str(very_tiny_disk), "no space left", after_progress=True)
    assert leftovers(very_tiny_disk) == []
