"""Hostile zoo entries and remotes: sha256s that match, yet nothing in them ever runs.

Each payload is served by a real ``http.server`` on 127.0.0.1 from a remote whose index and card
vouch for it (correct sha256s). A control first proves that the payload is live: gin's full
parser, or Keras without safe mode, does run it. bioflow must refuse every one with a clean
error (exit 2, no traceback), install nothing, and leave the sentinel file unwritten.
"""
import contextlib
import functools
import hashlib
import http.server
import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
import time
import zipfile

import gin
import keras
import numpy as np
import pytest
from click.testing import CliRunner

from bioflow import safe_gin, zoo
from bioflow.cli import main
from bioflow.data import Synthetic
from bioflow.errors import BioflowError
from bioflow.report import build_report
from bioflow.zoo import remote as remote_lib
from zoo_http import ModelKerasHandler, QuietHandler, serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def touch_sentinel():
    """A function from outside bioflow with a side effect, as another library might register."""
    pathlib.Path(os.environ["BIOFLOW_TEST_SENTINEL"]).touch()
    return Synthetic(n_train=32, n_test=32)


# Registered the way another installed library could: under its own module, and under bioflow's.
gin.external_configurable(touch_sentinel, "touch", module="evil_plugin")
gin.external_configurable(touch_sentinel, "touch_sentinel", module="bioflow")

PAYLOAD_MODULE = "import os, pathlib\npathlib.Path(os.environ['BIOFLOW_TEST_SENTINEL']).touch()\n"


def config_payloads(sentinel):
    """``{case: operative_config.gin text}``: each runs code when gin's full parser reads it."""
    return {
        "import": "import bioflow_test_payload\nbuild_model.classes = 10\n",
        "dynamic_registration": textwrap.dedent(f"""\
            from __gin__ import dynamic_registration
            import subprocess
            import bioflow.data.pipeline
            bioflow.data.pipeline.DataPipeline.source = @subprocess.getoutput()
            subprocess.getoutput.cmd = 'touch {sentinel}'
            """),
        "foreign_configurable": "build_model.classes = 10\nDataPipeline.source = @evil_plugin.touch()\n",
        "foreign_function_in_bioflow_namespace": "DataPipeline.source = @touch_sentinel()\n",
    }


CONTROL = """
import json, os, pathlib, sys
import gin
import bioflow.config
bioflow.config.register()
from bioflow.data import DataPipeline
sys.path.insert(0, sys.argv[1])
import test_malicious_entries  # registers evil_plugin.touch as the test process does
sentinel = pathlib.Path(os.environ["BIOFLOW_TEST_SENTINEL"])
ran = {}
for path in sys.argv[2:]:
    sentinel.unlink(missing_ok=True)
    gin.clear_config()
    gin.parse_config(open(path).read())
    gin.get_configurable(DataPipeline)()  # what `bioflow evaluate` does with an entry's data pipeline
    ran[pathlib.Path(path).stem] = sentinel.exists()
print(json.dumps(ran))
"""


@pytest.fixture
def sentinel(tmp_path, monkeypatch):
    path = tmp_path / "SENTINEL"
    monkeypatch.setenv("BIOFLOW_TEST_SENTINEL", str(path))
    module_dir = tmp_path / "payload_module"
    module_dir.mkdir()
    (module_dir / "bioflow_test_payload.py").write_text(PAYLOAD_MODULE)
    monkeypatch.syspath_prepend(str(module_dir))  # an `import` payload would find it
    monkeypatch.setenv("PYTHONPATH", str(module_dir))
    return path


@pytest.fixture
def remote(tiny_entry, tmp_path):
    """A remote zoo exported from the tiny entry, to be made hostile."""
    _, root = tiny_entry
    folder = tmp_path / "remote"
    zoo.export(folder, root=root)
    for path in folder.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return folder


def sha(data):
    return hashlib.sha256(data).hexdigest()


def vouch(remote, files=None, card=None, name="tiny", version="1.0.0"):
    """Write ``files`` into the remote entry and make its card and index declare them (a lying remote)."""
    entry = remote / name / version
    card_data = json.loads((entry / "card.json").read_text())
    for rel, data in (files or {}).items():
        (entry / rel).write_bytes(data)
        card_data["files"][rel] = {"sha256": sha(data), "size": len(data)}
    text = card if isinstance(card, str) else json.dumps(card(card_data) if callable(card) else card_data)
    (entry / "card.json").write_text(text)
    index = json.loads((remote / "index.json").read_text())
    index["entries"][name]["versions"][version]["card"] = {"sha256": sha(text.encode()), "size": len(text.encode())}
    (remote / "index.json").write_text(json.dumps(index))


def pull(url, root, *extra):
    return CliRunner().invoke(main, ["zoo", "pull", "tiny", "--remote", url, "--zoo", str(root), *extra])


def assert_clean_refusal(result, *fragments):
    """Exit 2 with one ``Error:`` paragraph: no traceback, and every fragment in it."""
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (result.exit_code, result.output,
                                                                               result.exception)
    assert "Traceback" not in result.output and "\nError: " in "\n" + result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


def assert_nothing_installed(root):
    assert zoo.Zoo(root).names() == []
    staging = root / ".staging"
    assert not staging.exists() or not list(staging.iterdir())


# -- the restricted gin reader -------------------------------------------------------------------

@pytest.mark.parametrize("text, line, fragment", [
    ("Fit.epochs = 2\nimport os\n", 2, "it imports 'os'"),
    ("from os import path\n", 1, "it imports 'os.path'"),
    ("from __gin__ import dynamic_registration\n", 1, "dynamic registration"),
    ("include 'other.gin'\n", 1, "it includes 'other.gin'"),
    ("subprocess.getoutput.cmd = 'id'\n", 1, "'subprocess.getoutput' is not a configurable that bioflow registered"),
    ("train.data = @os.system()\n", 1, "@os.system() is not a configurable that bioflow registered"),
    ("train.data = [1, {'a': @evil_plugin.touch}]\n", 1, "@evil_plugin.touch is not a configurable"),
    ("train.data = @touch_sentinel()\n", 1, "@touch_sentinel() is not a configurable that bioflow registered"),
    ("gin.singleton.constructor = @Gabor\n", 1, "'gin.singleton' is not a configurable"),
    ("os.environ = 3\n", 1, "'os' is not a configurable that bioflow registered"),
    ("train.seed = %os.sep\n", 1, "the macro %os.sep names a module"),
    ("train.seed = %gin.REQUIRED\n", 1, "names a module"),
    ("train.seed = %UNDEFINED\n", 1, "the macro %UNDEFINED is not defined in this config"),
    ("evil_plugin.touch:\n  x = 1\n", 1, "'evil_plugin.touch' is not a configurable"),
])
def test_restricted_reader_refuses_code_and_names_the_line(text, line, fragment):
    with pytest.raises(safe_gin.UnsafeConfig) as info:
        safe_gin.check(text, "evil@1.0.0: operative_config.gin")
    message = str(info.value)
    assert message.startswith(f"evil@1.0.0: operative_config.gin, line {line}: refused "), message
    assert fragment in message


def test_restricted_reader_accepts_a_real_operative_config(tiny_entry):
    """A real operative config, with a scope and a macro, is plain gin: the check keeps every binding."""
    run, _ = tiny_entry
    text = (run / "operative_config.gin").read_text() + "N = 7\nscoped/Synthetic.n_test = %N\n"
    checked = safe_gin.check(text, "entry")
    assert len([s for s in checked if s.arg_name]) == len(safe_gin.bindings(text, "x")) - 0
    assert safe_gin.bindings(text, "x")["scoped/bioflow.Synthetic.n_test"] == "%N"
    assert safe_gin.bindings(text, "x")["bioflow.Fit.epochs"] == "2"


def test_payloads_are_live_under_gins_full_parser(sentinel, tmp_path):
    """The control: each config payload does run code when gin's full parser reads it, as bioflow did."""
    paths = []
    for case, text in config_payloads(sentinel).items():
        paths.append(tmp_path / f"{case}.gin")
        paths[-1].write_text(text)
    done = subprocess.run([sys.executable, "-c", CONTROL, str(pathlib.Path(__file__).parent), *map(str, paths)],
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {case: True for case in config_payloads(sentinel)}


@pytest.mark.parametrize("case", list(config_payloads("x")))
def test_pull_refuses_a_config_that_would_run_code(remote, sentinel, tmp_path, case):
    text = config_payloads(sentinel)[case]
    vouch(remote, files={"operative_config.gin": text.encode()})
    root = tmp_path / "zoo"
    with serve(remote) as url:
        result = pull(url, root)
    assert_clean_refusal(result, "Refusing tiny@1.0.0", "tiny@1.0.0: operative_config.gin, line",
                         "Nothing was installed")
    assert_nothing_installed(root)
    assert not sentinel.exists()


def plant(tiny_entry, tmp_path, files):
    """A local zoo holding tiny@1.0.0 with ``files`` replaced (as if copied in by hand, bypassing pull)."""
    _, root = tiny_entry
    local = tmp_path / "planted"
    shutil.copytree(root, local)
    entry = local / "tiny" / "1.0.0"
    for path in [entry, *entry.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    card = json.loads((entry / "card.json").read_text())
    for rel, data in files.items():
        (entry / rel).write_bytes(data)
        card["files"][rel] = {"sha256": sha(data), "size": len(data)}
    (entry / "card.json").write_text(json.dumps(card))
    (local / "catalogue.json").unlink(missing_ok=True)  # no recorded card hash: the planted card is the truth
    return local


@pytest.mark.parametrize("case", ["import", "dynamic_registration", "foreign_configurable"])
def test_evaluate_and_verify_refuse_a_planted_entry(tiny_entry, sentinel, tmp_path, case):
    local = plant(tiny_entry, tmp_path, {"operative_config.gin": config_payloads(sentinel)[case].encode()})
    result = CliRunner().invoke(main, ["evaluate", "--entry", "tiny", "--zoo", str(local),
                                       "--out", str(tmp_path / "out"), "--n-images", "8"])
    assert_clean_refusal(result, "tiny@1.0.0: operative_config.gin, line", "refused")
    verify = CliRunner().invoke(main, ["zoo", "verify", "tiny", "--zoo", str(local)])
    assert verify.exit_code == 1 and "operative_config.gin, line" in verify.output
    assert not sentinel.exists() and not (tmp_path / "out" / "results").exists()


def lambda_model_bytes(sentinel, tmp_path):
    """A model.keras whose Lambda layer touches the sentinel when it is called."""
    path = str(sentinel)
    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(
        keras.layers.Lambda(lambda x: (open(path, "a").close(), x)[1], name="innocent")(inputs)))
    target = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(target)
    sentinel.unlink(missing_ok=True)  # building the model called the lambda once
    return target.read_bytes()


def test_pull_refuses_a_lambda_model_before_keras_sees_it(tiny_entry, remote, sentinel, tmp_path):
    data = lambda_model_bytes(sentinel, tmp_path)
    control = keras.saving.load_model(tmp_path / "lambda.keras", safe_mode=False)  # the control: it is live
    control(np.zeros((1, 32, 32, 1), np.float32))
    assert sentinel.exists()
    sentinel.unlink()
    vouch(remote, files={"model.keras": data})
    with serve(remote) as url:
        result = pull(url, tmp_path / "zoo")
    assert_clean_refusal(result, "Refusing tiny@1.0.0", "model.keras: it holds a Lambda layer 'Lambda' "
                         "(layer 'innocent'), which carries Python code")
    assert_nothing_installed(tmp_path / "zoo")
    local = plant(tiny_entry, tmp_path, {"model.keras": data})  # copied in by hand, bypassing pull
    with pytest.raises(BioflowError, match="Refusing to load tiny@1.0.0: model.keras it holds a Lambda layer"):
        zoo.load("tiny", root=local)
    assert not sentinel.exists()


@pytest.mark.parametrize("mutate, fragment", [
    (lambda c: dict(c, files=list(c["files"])), "files must be an object, got list"),
    (lambda c: dict(c, name=5), "name must be a string, got 5"),
    (lambda c: dict(c, data=dict(c["data"], mean="122")), "data.mean must be a number, got \"122\""),
    (lambda c: dict(c, run=dict(c["run"], trial="1")), "run.trial must be an integer or null"),
    (lambda c: dict(c, data=dict(c["data"], normalisation="per-pixel")),
     "data.normalisation must be 'featurewise' or 'samplewise' or null, got 'per-pixel'"),
    (lambda c: dict(c, metrics=dict(c["metrics"], auc=[0.5])), "metrics.auc must be an object, got list"),
    (lambda c: dict(c, architecture=dict(c["architecture"], filter_bank={"v1": "x"})),
     "architecture.filter_bank['v1'] must be an object"),
    (lambda c: {**c, "files": {**c["files"], "history.csv": {"sha256": "0" * 64, "size": "12"}}},
     "files['history.csv'].size must be an integer, got \"12\""),
    (lambda c: {k: v for k, v in c.items() if k != "data"}, "data is missing"),
    (lambda c: [c], "the card must be an object, got list"),
    (lambda c: dict(c, data=dict(c["data"], mean=float("nan"))), "data.mean must be a finite pixel value"),
    (lambda c: dict(c, data=dict(c["data"], std=0)), "data.std must be a finite pixel spread in (1e-6, 255]"),
    (lambda c: dict(c, data=dict(c["data"], interpolation="cubic")), "data.interpolation must be"),
    (lambda c: {**c, "files": {**c["files"], "results/zz": {"sha256": "0" * 64, "size": 1},
                               "results/zz/y": {"sha256": "0" * 64, "size": 1}}},
     "files lists both 'results/zz' and 'results/zz/y'"),
])
def test_pull_refuses_a_card_with_wrong_types_or_values_out_of_range(remote, tmp_path, mutate, fragment):
    vouch(remote, card=mutate)
    with serve(remote) as url:
        result = pull(url, tmp_path / "zoo")
    assert_clean_refusal(result, "card.json is not a valid card", fragment)
    assert_nothing_installed(tmp_path / "zoo")


@pytest.mark.parametrize("where", ["index", "card"])
def test_deeply_nested_json_is_refused_cleanly(remote, tmp_path, where):
    nested = '{"entries": ' + "[" * 200_000 + "]" * 200_000 + "}"
    if where == "index":
        (remote / "index.json").write_text(nested)
    else:
        vouch(remote, card=nested)
    with serve(remote) as url:
        result = pull(url, tmp_path / "zoo")
    assert_clean_refusal(result, "RecursionError", "is not a bioflow zoo index" if where == "index" else
                         "is not a valid card")
    assert_nothing_installed(tmp_path / "zoo")


# -- slow and redirecting servers ------------------------------------------------------------------

class Trickle(ModelKerasHandler):
    """Sends model.keras at about 20 bytes a second, as a hostile or broken server might for days."""

    def send_model(self, data):
        with contextlib.suppress(OSError):
            for i in range(0, len(data), 2):
                self.wfile.write(data[i:i + 2])
                self.wfile.flush()
                time.sleep(0.1)


@pytest.mark.parametrize("options, fragment", [
    (["--min-rate", "1000000", "--gin-param", "pull.grace = 2.0"], "pull.min_rate"),  # 2 s + size / 1 MB/s
    (["--timeout", "3"], "total deadline of 3 s (pull.timeout)"),
])
def test_pull_of_a_trickling_server_stops_at_its_deadline(remote, tmp_path, options, fragment):
    start = time.monotonic()
    with serve(remote, Trickle) as url:
        result = pull(url, tmp_path / "zoo", *options)
    assert time.monotonic() - start < 30
    assert_clean_refusal(result, "model.keras is too slow", fragment, "Nothing was installed")
    assert_nothing_installed(tmp_path / "zoo")


def test_pull_deadlines_are_checked():
    with pytest.raises(BioflowError, match="pull.min_rate must be a positive number, got 0"):
        zoo.pull("tiny", remote="/nowhere", min_rate=0)


@pytest.mark.parametrize("old, new, allowed", [
    ("http://zoo.example/a", "https://zoo.example/a", True),  # an upgrade on the same host
    ("http://zoo.example/a", "http://mirror.example/a", True),
    ("https://zoo.example/a", "https://mirror.example/a", True),
    ("https://zoo.example/a", "http://zoo.example/a", False),  # a downgrade
    ("http://zoo.example/a", "https://evil.example/a", False),  # an upgrade that also moves host
    ("http://zoo.example/a", "file:///etc/passwd", False),
    ("https://zoo.example/a", "ftp://zoo.example/a", False),
])
def test_redirect_rules(old, new, allowed):
    assert remote_lib.redirect_allowed(old, new) is allowed


class RedirectToHttps(QuietHandler):
    target_port = None

    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", f"https://127.0.0.1:{self.target_port}{self.path}")
        self.end_headers()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test certificate")
def test_same_host_https_upgrade_is_followed(remote, tmp_path, monkeypatch):
    """http://127.0.0.1 redirects every file to https://127.0.0.1 (a real TLS server): the pull succeeds."""
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this certificate only
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(remote)))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        handler = type("Redirect", (RedirectToHttps,), {"target_port": server.server_address[1]})
        with serve(remote, handler) as url:
            result = pull(url, tmp_path / "zoo")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    assert zoo.Zoo(tmp_path / "zoo").verify("tiny@1.0.0") == []


# -- symlinks in runs and entries -------------------------------------------------------------------

def test_publish_refuses_symlinks_and_fifos_in_a_run(tiny_entry, tmp_path):
    run, _ = tiny_entry
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    (tmp_path / "private_key").write_text("SECRET")
    (copy / "results" / "leak.txt").symlink_to(tmp_path / "private_key")
    os.mkfifo(copy / "results" / "pipe")
    result = CliRunner().invoke(main, ["zoo", "publish", str(copy), "--name", "leaky", "--zoo", str(tmp_path / "z")])
    assert_clean_refusal(result, f"results/leak.txt (a symbolic link to {tmp_path / 'private_key'})",
                         "results/pipe (a FIFO)", "never follows links")
    assert zoo.Zoo(tmp_path / "z").names() == []
    (copy / "results" / "pipe").unlink()
    (copy / "results" / "leak.txt").unlink()
    (copy / "history.csv").unlink()
    (copy / "history.csv").symlink_to(tmp_path / "private_key")
    result = CliRunner().invoke(main, ["zoo", "publish", str(copy), "--name", "leaky", "--zoo", str(tmp_path / "z")])
    assert_clean_refusal(result, "history.csv (a symbolic link to")
    assert not any("SECRET" in p.read_text(errors="ignore") for p in (tmp_path / "z").rglob("*") if p.is_file())


def test_verify_flags_a_symlinked_file_without_following_it(tiny_entry, tmp_path):
    local = plant(tiny_entry, tmp_path, {})
    history = local / "tiny" / "1.0.0" / "history.csv"
    copy = tmp_path / "history_copy.csv"
    shutil.copy(history, copy)  # the same bytes: only lstat tells them apart
    history.unlink()
    history.symlink_to(copy)
    (local / "tiny" / "1.0.0" / "results" / "extra").symlink_to("/etc/passwd")
    problems = zoo.Zoo(local).verify("tiny")
    assert "history.csv: a symbolic link, not a regular file" in problems
    assert "results/extra: a symbolic link, not listed in the card" in problems


def test_published_entries_are_readable_by_other_users(tiny_entry):
    _, root = tiny_entry
    entry = root / "tiny" / "1.0.0"
    mask = os.umask(0)
    os.umask(mask)
    for path in [entry, *(p for p in entry.rglob("*"))]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o444) & ~mask, (path, oct(mode))


# -- hostile strings in reports ----------------------------------------------------------------------

#: Markup in a string from an entry. HOSTILE has no '/', so it also fits file and layer names.
HOSTILE = '"\'><img src=x onerror="window.__pwned=1;alert(1)"><svg onload="window.__pwned=2">&amp;'
BREAKOUT = "</script><script>window.__pwned=3</script></pre><script>window.__pwned=4</script>"


def rename_layer(model_bytes, old, new):
    """A model.keras whose layer ``old`` is called ``new`` (Keras accepts almost any layer name)."""
    import io

    source, out = zipfile.ZipFile(io.BytesIO(model_bytes)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                data = data.decode().replace(json.dumps(old), json.dumps(new)).encode()
            target.writestr(item, data)
    return out.getvalue()


@pytest.fixture
def hostile_zoo(tiny_entry, tmp_path):
    """A local zoo whose entry carries hostile strings in every field a report shows."""
    import pandas as pd

    _, root = tiny_entry
    entry = root / "tiny" / "1.0.0"
    layer = "v1_" + HOSTILE
    perturbation = pd.read_csv(entry / "results" / "perturbation.csv")
    perturbation["Noise"] = perturbation["Noise"] + BREAKOUT
    perturbation["Model"] = BREAKOUT
    files = {"model.keras": rename_layer((entry / "model.keras").read_bytes(), "v1_gabor", layer),
             "results/perturbation.csv": perturbation.to_csv(index=False).encode(),
             f"results/images/{HOSTILE}.png": (entry / "results" / "images" / "uniform.png").read_bytes(),
             "operative_config.gin": f"# {HOSTILE}\n# {BREAKOUT}\n".encode()}
    local = plant(tiny_entry, tmp_path, files)
    entry = local / "tiny" / "1.0.0"
    card = json.loads((entry / "card.json").read_text())
    card["run"].update(label=BREAKOUT, model=BREAKOUT)
    card["architecture"].update(base=HOSTILE, convolution=BREAKOUT, recurrence=HOSTILE,
                                filter_bank={layer: card["architecture"]["filter_bank"]["v1_gabor"]})
    card["data"]["dataset"] = BREAKOUT
    card["versions"][HOSTILE] = BREAKOUT
    card.update(git_commit=BREAKOUT, created=HOSTILE)
    card["metrics"]["auc"] = {BREAKOUT: 0.5}
    (entry / "card.json").write_text(json.dumps(card))
    return local


def render_offline(path, actions):
    """Open ``path`` in Debian's headless Chromium with every route to the network closed, wait for
    the charts, run ``actions(page)`` and return its result with what the page did."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    seen = dict(dialogs=[], requests=[], finished=[], failed=[], errors=[], console=[])
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-sync",
            "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"])
        try:
            page = browser.new_context(offline=True).new_page()
            page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.on("requestfinished", lambda r: seen["finished"].append(r.url))
            page.on("requestfailed", lambda r: seen["failed"].append((r.url, r.failure)))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("console", lambda m: seen["console"].append((m.type, m.text)))
            page.goto(path.as_uri())
            page.wait_for_function("document.querySelectorAll('.chart svg.marks').length >= 2", timeout=60_000)
            result = actions(page)
        finally:
            browser.close()
    return result, seen


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_report_of_hostile_strings_runs_no_script_in_chromium(hostile_zoo, tmp_path):
    out = tmp_path / "report.html"
    data = build_report(out, hostile_zoo, all_entries=True)
    page_text = out.read_text()
    assert "<img src=x" not in page_text and "<script>window" not in page_text and "<svg onload" not in page_text
    assert data.entries[0].model == BREAKOUT

    def inspect(page):
        for point in page.locator("#perturbation .mark-symbol path").all()[:4]:  # tooltips show hostile names
            point.hover(force=True)
            page.wait_for_timeout(150)
        return dict(
            tooltip=page.evaluate("(document.getElementById('vg-tooltip-element') || {}).innerHTML || ''"),
            pwned=page.evaluate("window.__pwned === undefined ? null : window.__pwned"),
            alts=page.evaluate("Array.from(document.images).map(i => i.alt).filter(a => a.includes('kernel'))"),
            injected=page.evaluate(
                "document.querySelectorAll('img[src=\"x\"], svg[onload], script:not([type])').length"))

    found, seen = render_offline(out, inspect)
    assert seen["dialogs"] == [] and found["pwned"] is None and found["injected"] == 0
    assert seen["errors"] == [] and [m for m in seen["console"] if m[0] == "error"] == []
    assert [u for u in seen["requests"] if not u.startswith("data:") and u != out.as_uri()] == []
    assert HOSTILE in found["alts"][0]  # the hostile layer name is shown, as text
    assert "&lt;/script&gt;" in found["tooltip"] and "<script" not in found["tooltip"]  # the model name, as text


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_content_security_policy_stops_markup_that_escaping_missed(tiny_entry, tmp_path):
    """A second line of defence: raw markup injected into the page still runs nothing."""
    _, root = tiny_entry
    out = tmp_path / "report.html"
    build_report(out, root, all_entries=True)
    injected = '<img src=x onerror="alert(1)"><script>alert(2)</script><iframe src="javascript:alert(3)"></iframe>'
    out.write_text(out.read_text().replace("<h1>", injected + "<h1>", 1))
    _, seen = render_offline(out, lambda page: page.wait_for_timeout(500))
    assert seen["dialogs"] == []  # while the charts, which the policy allows by hash, still render
    assert seen["finished"] == [out.as_uri()]
    assert seen["failed"] and all(failure == "csp" for _, failure in seen["failed"]), seen["failed"]  # <img src=x>


# -- bad cards in a local zoo ------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "{not json", '{"name": 5}', "[" * 100_000 + "]" * 100_000])
def test_one_bad_card_does_not_break_list_show_or_report(tiny_entry, tmp_path, text):
    local = plant(tiny_entry, tmp_path, {})
    shutil.copytree(local / "tiny", local / "broken")
    card = local / "broken" / "1.0.0" / "card.json"
    card.write_text(text)
    listed = CliRunner().invoke(main, ["zoo", "list", "--zoo", str(local)])
    assert listed.exit_code == 0 and "tiny" in listed.output and "Traceback" not in listed.output
    assert "Warning: skipping broken@1.0.0" in listed.output
    assert CliRunner().invoke(main, ["zoo", "show", "tiny", "--zoo", str(local)]).exit_code == 0
    shown = CliRunner().invoke(main, ["zoo", "show", "broken", "--zoo", str(local)])
    assert_clean_refusal(shown, str(card))
    report = CliRunner().invoke(main, ["report", "--all", "--zoo", str(local), "--out", str(tmp_path / "r.html")])
    assert report.exit_code == 0, report.output
    assert "broken@1.0.0 is skipped" in report.output and "Report of 1 entry" in report.output


# -- broken networks: NaN weights --------------------------------------------------------------------

def nan_model_bytes(tiny_entry, tmp_path):
    """The tiny model.keras with its classifier's kernel set to NaN (a run that diverged unnoticed)."""
    run, _ = tiny_entry
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    dense.set_weights([np.full_like(kernel, np.nan), bias])
    target = tmp_path / "nan.keras"
    model.save(target)
    return dense.name, kernel.size, target.read_bytes()


def test_nan_weights_are_refused_at_publish_pull_and_evaluate(tiny_entry, tiny_run, remote, tmp_path):
    layer, size, data = nan_model_bytes(tiny_entry, tmp_path)
    named = f"layer {layer!r}, weight 'kernel': {size} of {size} values"
    (tiny_run / "model.keras").write_bytes(data)
    result = CliRunner().invoke(main, ["zoo", "publish", str(tiny_run), "--name", "nan", "--zoo", str(tmp_path / "z")])
    assert_clean_refusal(result, "holds weights that are NaN or infinite", named)
    assert zoo.Zoo(tmp_path / "z").names() == []
    result = CliRunner().invoke(main, ["evaluate", str(tiny_run), "--n-images", "8"])
    assert_clean_refusal(result, f"{tiny_run / 'model.keras'} holds weights that are NaN or infinite", named)
    assert not (tiny_run / "results" / "robustness.json").stat().st_mtime > (tiny_run / "model.keras").stat().st_mtime
    vouch(remote, files={"model.keras": data})
    with serve(remote) as url:
        result = pull(url, tmp_path / "zoo")
    assert_clean_refusal(result, "Refusing tiny@1.0.0", "tiny@1.0.0: model.keras holds weights that are NaN", named)
    assert_nothing_installed(tmp_path / "zoo")


# -- an entry's config configures nothing -----------------------------------------------------------

def root_payloads(victim, elsewhere, other_zoo):
    """``{case: lines appended to an entry's operative_config.gin}``: each would run one of bioflow's
    own entry points (train, evaluate, explain, pull) if the entry's bindings were applied."""
    train_here = (f"train.workdir = '{elsewhere}'\ntrain.label = 'hijack'\nFit.epochs = 1\n"
                  f"train.publish = 'hijacked'\ntrain.zoo = '{other_zoo}'\n")
    return {
        "plain": "evaluate.suite = @train()\n" + train_here,
        "clean_victim": (f"evaluate.suite = @train()\ntrain.workdir = '{victim.parent.parent}'\n"
                         f"train.label = '{victim.parent.name}'\ntrain.clean = True\n"),
        "scoped": "evaluate.suite = @victim/evaluate()\n" f"victim/evaluate.run_dir = '{victim}'\n" + train_here,
        "explain": f"evaluate.suite = @explain()\nexplain.run_dir = '{victim}'\n",
        "macro": "X = @train()\nevaluate.suite = %X\n" + train_here,
        "pull": f"evaluate.suite = @pull()\npull.spec = 'tiny'\npull.remote = '{victim}'\npull.root = '{other_zoo}'\n",
    }


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_entrys_config_runs_no_entry_point_of_bioflow(tiny_entry, tiny_run, zoo_copy, remote, tmp_path):
    """Every payload is plain gin naming bioflow's roots: pull accepts the text, and evaluating the
    entry uses none of it. A sentinel for each effect: no run outside the workdir, the victim run
    unchanged, no new version in the other zoo."""
    elsewhere = tmp_path / "elsewhere"
    original = (remote / "tiny" / "1.0.0" / "operative_config.gin").read_text()
    before_run, before_zoo = snapshot(tiny_run), snapshot(zoo_copy)
    for case, payload in root_payloads(tiny_run, elsewhere, zoo_copy).items():
        vouch(remote, files={"operative_config.gin": (original + payload).encode()})
        root = tmp_path / f"zoo_{case}"
        with serve(remote) as url:
            pulled = pull(url, root)
        assert pulled.exit_code == 0, (case, pulled.output)
        result = CliRunner().invoke(main, ["evaluate", "--entry", "tiny", "--zoo", str(root), "--out",
                                           str(tmp_path / f"out_{case}"), "--n-images", "32",
                                           "--gin-param", "Synthetic.n_test = 64",
                                           "--gin-param", "NoiseSuite.noises = ['invert']"])
        assert result.exit_code == 0, (case, result.output)
        summary = json.loads((tmp_path / f"out_{case}" / "results" / "robustness.json").read_text())
        assert set(summary["suite"]) == {"invert"}, case  # the user's suite, not the entry's
        assert summary["clean_accuracy"] == zoo.Zoo(root).card("tiny")["metrics"]["clean_accuracy"], case
        assert not elsewhere.exists(), case
        assert snapshot(tiny_run) == before_run, case
        assert snapshot(zoo_copy) == before_zoo and zoo.Zoo(zoo_copy).versions("tiny") == ["1.0.0"], case
        assert "hijacked" not in zoo.Zoo(zoo_copy).names()


# -- the zoo keeps its own integrity -------------------------------------------------------------

def zip_bomb(tmp_path, inflated=100 << 20, declared=100):
    """A model.keras whose config.json inflates to ``inflated`` bytes while its headers declare ``declared``."""
    import io
    import struct

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", b" " * inflated)
    data = bytearray(buffer.getvalue())
    name = b"config.json"
    local = data.find(name)  # the name follows a 30-byte local header; the central record's, a 46-byte one
    central = data.find(name, local + 1)
    for start, offset in ((local - 30, 22), (central - 46, 24)):  # where each header keeps the inflated size
        data[start + offset:start + offset + 4] = struct.pack("<I", declared)
    path = tmp_path / "bomb.keras"
    path.write_bytes(bytes(data))
    return path


def test_a_zip_bomb_is_refused_without_inflating_it(remote, tmp_path):
    import tracemalloc

    from bioflow.zoo import checks

    bomb = zip_bomb(tmp_path)
    assert bomb.stat().st_size < 1 << 20 and zipfile.ZipFile(bomb).getinfo("config.json").file_size == 100
    tracemalloc.start()
    problems = checks.model_problems(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert problems and "it is not a Keras model archive" in problems[0], problems
    assert peak < 8 << 20, peak  # 1 MiB reads: the old whole-member read peaked at several times 100 MiB
    vouch(remote, files={"model.keras": bomb.read_bytes()})
    with serve(remote) as url:
        result = pull(url, tmp_path / "zoo")
    assert_clean_refusal(result, "Refusing tiny@1.0.0", "model.keras: it is not a Keras model archive")
    assert_nothing_installed(tmp_path / "zoo")


def test_an_index_without_versions_is_refused(remote, tmp_path):
    index = json.loads((remote / "index.json").read_text())
    index["entries"]["tiny"]["versions"] = {}
    (remote / "index.json").write_text(json.dumps(index))
    with serve(remote) as url:
        result = pull(url, tmp_path / "zoo")
    assert_clean_refusal(result, "entries['tiny'].versions must not be empty")


def test_a_second_pull_of_the_same_entry_succeeds(remote, tmp_path):
    with serve(remote) as url:
        first, second = pull(url, tmp_path / "zoo"), pull(url, tmp_path / "zoo")
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert "already in the zoo" in second.output and "with the same sha256" in second.output


def test_export_refuses_the_zoo_itself_and_folders_inside_or_around_it(zoo_copy, tmp_path):
    before = {p: p.read_bytes() for p in zoo_copy.rglob("*") if p.is_file()}
    for dest, word in ((zoo_copy, "is"), (zoo_copy / "tiny", "lies inside"), (zoo_copy.parent, "contains")):
        result = CliRunner().invoke(main, ["zoo", "export", str(dest), "--zoo", str(zoo_copy)])
        assert_clean_refusal(result, f"it {word} the zoo at {zoo_copy.resolve()}")
    assert {p: p.read_bytes() for p in zoo_copy.rglob("*") if p.is_file()} == before
    assert zoo.Zoo(zoo_copy).verify("tiny") == []


def test_writers_refuse_paths_inside_an_entry(zoo_copy, tmp_path):
    entry = zoo_copy / "tiny" / "1.0.0"
    for args in (["report", "--all", "--zoo", str(zoo_copy), "--out", str(entry / "report.html")],
                 ["evaluate", "--entry", "tiny", "--zoo", str(zoo_copy), "--out", str(entry / "results")],
                 ["explain", "--entry", "tiny", "--zoo", str(zoo_copy), "--out", str(entry)],
                 ["evaluate", str(entry)]):
        result = CliRunner().invoke(main, args)
        assert_clean_refusal(result, f"is inside the zoo entry {entry}")
    assert zoo.Zoo(zoo_copy).verify("tiny") == []


def test_report_out_folder_and_spreadsheet_safe_tables(zoo_copy, tmp_path):
    import pandas as pd

    entry = zoo_copy / "tiny" / "1.0.0"
    card = json.loads((entry / "card.json").read_text())
    card["run"]["model"] = "=HYPERLINK(\"http://evil\")"
    (entry / "card.json").write_text(json.dumps(card))
    result = CliRunner().invoke(main, ["report", "--all", "--zoo", str(zoo_copy), "--out", str(tmp_path / "r") + "/"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").is_file() and (tmp_path / "r" / "report_data").is_dir()
    models = pd.read_csv(tmp_path / "r" / "report_data" / "models.csv")
    assert "'=HYPERLINK(\"http://evil\")" in set(models.astype(str).values.ravel())
    assert not any(str(v).startswith(("=", "+", "@")) for v in models.values.ravel())
    assert "instead, so that a spreadsheet shows it" in (tmp_path / "r" / "report.html").read_text()


def test_os_errors_are_one_line_naming_the_path(tiny_run, tmp_path, zoo_copy):
    result = CliRunner().invoke(main, ["report", "--all", "--zoo", str(zoo_copy), "--out", "/proc/bioflow/r.html"])
    assert_clean_refusal(result, "/proc/bioflow", "nothing was left half-written")
    (tiny_run / "model.keras").write_bytes((tiny_run / "model.keras").read_bytes()[:5000])  # truncated
    for args in (["evaluate", str(tiny_run), "--n-images", "8"],
                 ["zoo", "publish", str(tiny_run), "--name", "cut", "--zoo", str(tmp_path / "z")]):
        result = CliRunner().invoke(main, args)
        assert_clean_refusal(result, f"{tiny_run / 'model.keras'} is corrupt or truncated")


def test_terminal_escapes_in_a_card_are_printed_escaped(tiny_entry, tmp_path):
    local = plant(tiny_entry, tmp_path, {})
    card_path = local / "tiny" / "1.0.0" / "card.json"
    card = json.loads(card_path.read_text())
    card["run"]["model"] = "\x1b]0;pwned\x07\x1b[2J\rmodel"
    card["architecture"]["base"] = "vgg\x9b31m16\nFAKE LINE"
    card_path.write_text(json.dumps(card))
    for args in (["zoo", "list"], ["zoo", "show", "tiny"]):
        result = CliRunner().invoke(main, [*args, "--zoo", str(local)])
        assert result.exit_code == 0, result.output
        assert not any(c in result.output for c in "\x1b\x07\x9b\r"), repr(result.output)
        assert "\\x1b]0;pwned\\x07\\x1b[2J\\rmodel" in result.output and "vgg\\x9b31m16\\nFAKE LINE" in result.output


def test_staging_folders_of_dead_processes_are_removed_by_the_next_operation(remote, tmp_path):
    """A pull killed with SIGKILL leaves its staging folder; the next pull removes it, and keeps a live one's."""
    from bioflow.zoo import local as local_lib

    root = tmp_path / "zoo"
    with serve(remote, Trickle) as url:
        proc = subprocess.Popen([sys.executable, "-m", "bioflow.cli", "zoo", "pull", "tiny", "--remote", url,
                                 "--zoo", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        deadline = time.time() + 120
        while time.time() < deadline and not list((root / ".staging").glob("pull-*/model.keras")):
            time.sleep(0.2)
        proc.kill()
        proc.wait(timeout=30)
    left = list((root / ".staging").iterdir())
    assert len(left) == 1 and f".{proc.pid}." in left[0].name
    alive = root / ".staging" / f"pull-other-{local_lib._HOST}.{os.getpid()}.live"  # this test is alive
    alive.mkdir()
    with serve(remote) as url:
        result = pull(url, root)
    assert result.exit_code == 0, result.output
    assert [p.name for p in (root / ".staging").iterdir()] == [alive.name]


class Delayed(ModelKerasHandler):
    """Sends model.keras after 2 s, so that two pulls started together both download before either commits."""

    def send_model(self, data):
        time.sleep(2)
        self.wfile.write(data)


def test_two_pulls_of_the_same_entry_at_once_both_succeed(remote, tmp_path):
    root = tmp_path / "zoo"
    with serve(remote, Delayed) as url:
        procs = [subprocess.Popen([sys.executable, "-m", "bioflow.cli", "zoo", "pull", "tiny", "--remote", url,
                                   "--zoo", str(root)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")) for _ in range(2)]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    said = "\n".join(outputs)
    assert said.count("Pulled tiny@1.0.0") == 1 and "with the same sha256" in said, said
    assert zoo.Zoo(root).verify("tiny") == [] and not list((root / ".staging").iterdir())


def test_a_config_that_is_not_utf8_is_refused_naming_the_file(remote, tmp_path):
    vouch(remote, files={"operative_config.gin": b"train.label = '\xff\xfe latin-1 \xe9'\n"})
    with serve(remote) as url:
        result = pull(url, tmp_path / "zoo")
    assert_clean_refusal(result, "tiny@1.0.0: operative_config.gin is not UTF-8 text (byte 15 is 0xff)")
    assert_nothing_installed(tmp_path / "zoo")


@pytest.mark.parametrize("text, fragment", [
    ("train.label = " + "[" * 3000 + "]" * 3000 + "\n", "line 1: refused: brackets nested more than 32 deep"),
    ("train.label = 'x'\n" + "# padding\n" * 120_000,
     "refused: it is 1,200,018 bytes, and a config may have at most 1,048,576"),
])
def test_the_config_check_has_depth_and_size_limits(remote, tmp_path, text, fragment):
    vouch(remote, files={"operative_config.gin": text.encode()})
    with serve(remote) as url:
        result = pull(url, tmp_path / "zoo")
    assert_clean_refusal(result, "tiny@1.0.0: operative_config.gin", fragment)
    assert "RecursionError" not in result.output
    assert_nothing_installed(tmp_path / "zoo")
