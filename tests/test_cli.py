"""The `bioflow` command line: summary as table and JSON, and one-paragraph errors."""
import json
import os
import pathlib
import subprocess
import sys

from click.testing import CliRunner

from bioflow.cli import main
from helpers import GIN_DIR, SEED_COUNTS

TINY = ["--gin", "tiny/base"]  # CPU sizes, after the file it shrinks


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_summary_json_full_size_seed_network():
    result = run("summary", "--gin", str(GIN_DIR / "vgg16_rib_rc.gin"), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["trainable_params"], info["non_trainable_params"]) == SEED_COUNTS["vgg16_rib_rc"]
    assert info["total_params"] == sum(layer["params"] for layer in info["layers"])
    first = [layer["name"] for layer in info["layers"][:5]]
    assert first == ["image", "retina_conv1", "retina_conv2", "retina_conv3", "recurrent_convlstm"]
    assert info["layers"][4]["output_shape"] == [None, 224, 224, 24]
    assert set(info["layers"][0]) == {"name", "class", "output_shape", "params", "trainable"}


def test_summary_table_with_repeated_gin_and_params():
    result = run("summary", "--gin", "vgg16_gabor", "--gin", "retina/rib", *TINY,
                 "--gin-param", "RetinalBottleneck.width = 4")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Model: vgg16_gabor_rib4"
    row = next(line for line in lines if line.startswith("v1_gabor"))
    assert row.split()[1:] == ["FilterBankConv", "(None,", "32,", "32,", "24)", f"{63 * 63 * 4 * 24 + 24:,}", "no"]
    assert any(line.startswith("Non-trainable params:") for line in lines)


def test_errors_are_one_paragraph_with_exit_code_2():
    cases = [
        (["summary", "--gin", "vgg16_gaborr"], "not found. Looked in"),
        (["summary", "--gin-param", "vgg16.widht = 2"], "doesn't have a parameter named 'widht'"),
        (["summary", "--gin-param", "build_model.base = 'vgg17'"], "valid bases are"),
        (["summary", "--gin-param", "build_model.filter_bank = 'gabour'"], "valid filter banks are"),
        (["summary", "--gin", "vgg16_gabor", "--gin-param", "build_model.input_shape = (8, 8, 1)"],
         "too small for base 'vgg16'"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output


def test_configs_lists_shipped_files():
    result = run("configs")
    assert result.exit_code == 0
    assert {"vgg16_rib_rc", "evans2022/gabor_resnet50", "tiny/base"} <= set(result.stdout.split())


def test_installed_console_script_finds_gin_by_name_from_anywhere(tmp_path):
    exe = pathlib.Path(sys.executable).with_name("bioflow")
    assert exe.is_file(), f"the console script is not installed next to {sys.executable}: pip install the project"
    proc = subprocess.run([str(exe), "summary", "--gin", "tiny/vgg16_rib_rc", "--json"], cwd=tmp_path,
                          capture_output=True, text=True, env=dict(os.environ, BIOFLOW_GIN_PATH=""))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["name"] == "vgg16_gabor_rib2_convlstm"


def test_help_and_the_docs_flag_table_come_from_one_declaration():
    import subprocess
    import sys

    from bioflow import flags

    table = subprocess.run([sys.executable, str(GIN_DIR.parent / "tools" / "flag_table.py"), "--check"],
                           capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    for command, declared in flags.FLAGS.items():
        result = run(*command.split(), "--help")
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        for flag in declared:
            assert all(spelling in text for spelling in flag.spellings), (command, flag.name)
            assert " ".join(flag.full_help().split())[:40] in text, (command, flag.name)
    assert flags.gin_bindings("evaluate", {"n_images": 3, "suite": "extended", "save_all_images": True,
                                           "force": None}) == [
        "evaluate.n_images = 3", "include 'noise/extended.gin'", "Outputs.images = 'all'"]
    assert flags.gin_bindings("explain", {"layer": ("a", "b"), "level": 0.5}) == [
        "explain.level = 0.5", "ExplainMethods.layers = ['a', 'b']"]


def test_a_flag_is_the_same_binding_as_its_gin_param(tmp_path):
    from bioflow import bindings, config, flags

    for flag_name, text, key, value in (("--label", "x y", "train.label", "x y"), ("--trial", "3", "train.trial", 3),
                                        ("--cifar10g", str(tmp_path), "CIFAR10G.folder", str(tmp_path)),
                                        ("--resume", True, "train.resume", True)):
        flag = next(f for f in flags.FLAGS["train"] if flag_name in f.spellings)
        config.parse(["quickstart"], flags.gin_bindings("train", {flag.key: flag.kind(text)}))
        assert bindings.query(key) == value


def test_the_old_entry_spellings_still_work_with_a_note(tiny_entry):
    _, root = tiny_entry
    result = CliRunner().invoke(main, ["explain", "--zoo", "tiny", "--zoo-root", str(root), "--images", "1",
                                       "--out", str(root.parent / "old_spelling")])
    assert result.exit_code == 0, result.output
    assert "--zoo-root is deprecated; use --zoo ROOT" in result.output
    assert "--zoo tiny names an entry, which is deprecated: use --entry tiny" in result.output


def test_the_package_and_the_cli_load_no_tensorflow():
    import subprocess
    import sys

    heavy = ("tensorflow", "keras", "tensorflow_datasets", "bioflow.model")
    code = (f"import sys, bioflow, bioflow.cli, bioflow.errors, bioflow.config; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_tensorflows_cpp_start_up_log_is_held_back_and_other_lines_kept():
    """A child writes absl-style lines and a Python warning to descriptor 2 inside the held block, as
    TensorFlow's import does: only the warning comes back, unless BIOFLOW_VERBOSE is set."""
    import os
    import subprocess
    import sys

    code = ("import os\nfrom bioflow import tensorflow_runtime as t\nwith t._held_stderr() as held:\n"
            "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to "
            "STDERR\\nI0000 00:00:1796138603.403005    8251 port.cc:153] oneDNN custom operations are on.\\n"
            "E0000 00:00:1796138621.851939    8275 cuda_platform.cc:52] failed call to cuInit\\n"
            "UserWarning: a Python warning\\n')\n"
            "t._replay(held[0], everything=t.verbose())\n")
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env={k: v for k, v in os.environ.items() if k != "BIOFLOW_VERBOSE"})
    assert quiet.stderr == "UserWarning: a Python warning\n"
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, BIOFLOW_VERBOSE="1"))
    assert loud.stderr.count("\n") == 4 and "cuInit" in loud.stderr


def test_a_command_that_loads_tensorflow_prints_none_of_its_cpp_log(tmp_path):
    import os
    import re
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("BIOFLOW_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run([sys.executable, "-m", "bioflow.cli", "summary", "--gin", "tiny/vgg16_gabor"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "Model: vgg16_gabor" in done.stdout
    assert not re.search(r"^([IWEF]\d{4} |WARNING: All log messages before absl)", done.stderr, re.M), done.stderr


def test_quietly_gives_back_other_lines_even_when_its_block_fails():
    import os
    import subprocess
    import sys

    code = ("import os\nfrom bioflow import tensorflow_runtime as t\ntry:\n    with t.quietly():\n"
            "        os.write(2, b'E0000 00:00:1796142912.207825   25163 util.cc:131] oneDNN supports DT_INT32\\n'"
            " b'kept\\n')\n        raise RuntimeError('boom')\nexcept RuntimeError:\n    pass\n"
            "with t.quietly():\n    os.write(2, b'E0000 00:00:1.5   1 util.cc:131] a note\\nalso kept\\n')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "BIOFLOW_VERBOSE"})
    # the failed block gives everything back (its log may explain the failure); the other only "also kept"
    assert done.stderr.splitlines() == ["E0000 00:00:1796142912.207825   25163 util.cc:131] oneDNN supports DT_INT32",
                                        "kept", "also kept"], done.stderr
