"""labkit.kaggle: bundles (schema with machine_shape, Kaggle's naming rules, no overwrite, -f) and the push /
status / pull round trip through the official `kaggle` client against a stand-in for Kaggle's API on 127.0.0.1
(no network): the client is pointed at it with KAGGLE_API_ENVIRONMENT=LOCALHOST (calls go to
http://localhost/api/v1/...) and HTTP_PROXY=127.0.0.1:PORT (requests hands every call to the stand-in)."""
from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import nbformat
import pytest

from labkit import cli, kaggle as K, runner

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_notebook(tmp_path, monkeypatch):
    """A course folder with one small notebook: a parameters cell (X, NAME) and a cell that records a value."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                          "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# 90 tiny"),
                nbformat.v4.new_code_cell("import labkit"),
                nbformat.v4.new_code_cell('X = 1\nNAME = "a"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("labkit.record('x', X)")]
    nbformat.write(nb, str(folder / "90_tiny.ipynb"))
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(folder))
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    return folder / "90_tiny.ipynb"


# ---------------------------------------------------------------------------------------------- bundles
def test_bundle_writes_machine_shape_and_passes_the_schema(tiny_notebook, tmp_path):
    out = K.bundle_kaggle("90_tiny", {"X": 5}, datasets=["someone/vintext"], user="alice", out=tmp_path / "b")
    meta = json.loads((out / "kernel-metadata.json").read_text())
    jsonschema.validate(meta, K.KAGGLE_METADATA_SCHEMA)
    assert meta["machine_shape"] == "NvidiaTeslaT4" and meta["enable_gpu"] is True and meta["enable_tpu"] is False
    assert meta["id"] == "alice/labkit-90-tiny"
    nb = nbformat.read(str(out / "90_tiny.ipynb"), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "X = 5" in injected[0].source and "LABKIT_RUN_DIR" in injected[0].source
    assert "parameters" in (out / "params.yaml").read_text()
    # the schema covers the new field: a retired or unknown shape, an extra field and a bad dataset fail it
    for bad in ({"machine_shape": "NvidiaTeslaP100"}, {"machine_shape": "T4"}, {"accelerator": "x"},
                {"dataset_sources": ["no-slash"]}, {"id": "alice/abc"}, {"id": "a b/labkit-x"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**meta, **bad}, K.KAGGLE_METADATA_SCHEMA)


def test_bundle_accelerator_choice_and_cpu(tiny_notebook, tmp_path):
    tpu = json.loads((K.bundle_kaggle("90_tiny", user="alice", accelerator="TpuV5E8", out=tmp_path / "t")
                      / "kernel-metadata.json").read_text())
    assert tpu["machine_shape"] == "TpuV5E8" and tpu["enable_tpu"] is True and tpu["enable_gpu"] is False
    cpu = json.loads((K.bundle_kaggle("90_tiny", user="alice", gpu=False, out=tmp_path / "c")
                      / "kernel-metadata.json").read_text())
    assert "machine_shape" not in cpu and cpu["enable_gpu"] is False
    jsonschema.validate(tpu, K.KAGGLE_METADATA_SCHEMA)
    jsonschema.validate(cpu, K.KAGGLE_METADATA_SCHEMA)


@pytest.mark.parametrize("argv, message", [
    (["--user", "me/you"], "--user 'me/you': not a Kaggle user name"),
    (["--user", ""], "not a Kaggle user name"),
    (["--dataset", "someone"], "--dataset 'someone': expected OWNER/SLUG"),
    (["--dataset", "someone/Has Spaces"], "expected OWNER/SLUG"),
    (["--accelerator", "NvidiaTeslaP100"], "current PyTorch images have no kernels for the P100"),
    (["--accelerator", "T4"], "not a Kaggle machine shape"),
    (["-f", "missing.yaml"], "-f missing.yaml: no such parameter file"),
    (["-p", "NOPE", "1"], "unknown parameter"),
])
def test_bundle_cli_rejects_bad_input_before_writing(tiny_notebook, tmp_path, capsys, argv, message):
    """One line, exit 2, and no folder written. Catches `-f missing.yaml` being ignored (it exited 0 and read
    nothing) and a user/dataset/accelerator check that runs after the files are written."""
    out = tmp_path / "b"
    rc = cli.main(["bundle", "kaggle", "90_tiny", "--user", "alice", "--out", str(out), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_bundle_refuses_to_overwrite(tiny_notebook, tmp_path, capsys):
    out = tmp_path / "b"
    assert cli.main(["bundle", "kaggle", "90_tiny", "--user", "alice", "--out", str(out)]) == 0
    before = (out / "90_tiny.ipynb").read_bytes()
    assert cli.main(["bundle", "kaggle", "90_tiny", "--user", "alice", "--out", str(out), "-p", "X", "7"]) == 2
    assert "already holds a bundle" in capsys.readouterr().err
    assert (out / "90_tiny.ipynb").read_bytes() == before


def test_bundle_file_parameters_are_read(tiny_notebook, tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text("X: 9\n")
    out = K.bundle_kaggle("90_tiny", user="alice", param_file=str(pf), out=tmp_path / "b")
    nb = nbformat.read(str(out / "90_tiny.ipynb"), as_version=4)
    assert any("X = 9" in c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))


# ---------------------------------------------------------------------------------------------- stand-in API
class StandIn:
    """Kaggle's kernels API as the client calls it: POST /api/v1/kernels.KernelsApiService/<Method>, JSON in and
    out; output files served under /files/. Status answers RUNNING once, then COMPLETE."""

    def __init__(self):
        self.calls: list[tuple[str, str, dict, dict]] = []  # (method, path, headers, json body)
        self.statuses = ["RUNNING", "COMPLETE"]
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _reply(self, code, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                path = urlsplit(self.path).path
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                stand_in.calls.append(("POST", self.path, dict(self.headers), body))
                method = path.rsplit("/", 1)[-1]
                if not path.startswith("/api/v1/kernels.KernelsApiService/"):
                    return self._reply(404, {"code": 404, "message": f"no {path}"})
                if method == "SaveKernel":
                    return self._reply(200, {"ref": f"/code/{body['slug']}", "versionNumber": 3,
                                             "url": f"https://www.kaggle.com/code/{body['slug']}"})
                if method == "GetKernelSessionStatus":
                    st = stand_in.statuses.pop(0) if len(stand_in.statuses) > 1 else stand_in.statuses[0]
                    return self._reply(200, {"status": st})
                if method == "ListKernelSessionOutput":
                    base = f"http://127.0.0.1:{stand_in.port}/files"
                    return self._reply(200, {"files": [{"fileName": "records.json", "url": f"{base}/records.json"},
                                                       {"fileName": "90_tiny.ipynb", "url": f"{base}/nb"}],
                                             "log": '[{"stream_name":"stdout","data":"ok\\n"}]'})
                return self._reply(404, {"code": 404, "message": f"unknown method {method}"})

            def do_GET(self):
                stand_in.calls.append(("GET", self.path, dict(self.headers), {}))
                path = urlsplit(self.path).path
                if path == "/files/records.json":
                    return self._reply(200, {"x": 5, "verdict:the tiny lesson holds": True})
                if path == "/files/nb":
                    nb = nbformat.v4.new_notebook()
                    out = nbformat.v4.new_output("display_data", data={
                        "application/vnd.labkit.record+json": {"name": "final_map", "value": 0.5}})
                    nb.cells = [nbformat.v4.new_code_cell("", outputs=[out])]
                    return self._reply(200, nbformat.writes(nb).encode(), "application/octet-stream")
                return self._reply(404, {"code": 404, "message": "no file"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def posts(self, method):
        return [c for c in self.calls if c[0] == "POST" and c[1].endswith("/" + method)]


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    pytest.importorskip("kaggle", reason="the Kaggle client is the [kaggle] extra (make install adds it)")
    s = StandIn()
    s.thread.start()
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    for var in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{s.port}")
    for var in ("NO_PROXY", "no_proxy", "KAGGLE_API_TOKEN", "KAGGLE_API_V1_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "secret-key")
    yield s
    s.server.shutdown()


def test_kaggle_round_trip_against_the_stand_in(tiny_notebook, tmp_path, stand_in, capsys):
    """bundle -> `labkit kaggle push` -> status (RUNNING) -> `labkit kaggle pull` (COMPLETE): checks the
    request shapes the official client sends (endpoints, basic auth with the key, the slug, machine_shape, the
    notebook with the injected parameters) and that the outputs land in RUN/output with records.json and run.json
    collected as for a local run. Catches a push without machine_shape, a pull that downloads but does not
    collect (records missing), and records taken from only one of records.json / the executed notebook."""
    run = tmp_path / "bundle"
    assert cli.main(["bundle", "kaggle", "90_tiny", "-p", "X", "5", "--out", str(run)]) == 0  # user from env
    assert cli.main(["kaggle", "push", str(run)]) == 0
    (save,) = stand_in.posts("SaveKernel")
    _, url, headers, body = save
    assert url == "http://localhost/api/v1/kernels.KernelsApiService/SaveKernel"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"alice:secret-key").decode()
    assert body["slug"] == "alice/labkit-90-tiny" and body["newTitle"] == "labkit 90 tiny"
    assert body["machineShape"] == "NvidiaTeslaT4" and body["enableGpu"] is True
    assert body["language"] == "python" and body["kernelType"] == "notebook"
    sent = json.loads(body["text"])
    assert any("X = 5" in c["source"] for c in sent["cells"])
    pushed = json.loads((run / "kaggle.json").read_text())
    assert pushed["url"] == "https://www.kaggle.com/code/alice/labkit-90-tiny" and pushed["version"] == 3

    assert cli.main(["kaggle", "status", str(run)]) == 0
    assert "running" in capsys.readouterr().out
    (st,) = stand_in.posts("GetKernelSessionStatus")
    assert st[3] == {"userName": "alice", "kernelSlug": "labkit-90-tiny"}

    assert cli.main(["kaggle", "pull", str(run)]) == 0
    (lst,) = stand_in.posts("ListKernelSessionOutput")
    assert lst[3]["userName"] == "alice" and lst[3]["kernelSlug"] == "labkit-90-tiny"
    assert (run / "output" / "records.json").is_file() and (run / "output" / "90_tiny.ipynb").is_file()
    assert (run / "output" / "labkit-90-tiny.log").is_file()
    records = json.loads((run / "records.json").read_text())
    assert records == {"x": 5, "verdict:the tiny lesson holds": True, "final_map": 0.5}
    result = json.loads((run / "run.json").read_text())
    assert set(result) == set(runner.RunResult.__dataclass_fields__)
    assert result["status"] == "ok" and result["records"] == records and result["parameters"] == {"X": 5}
    assert result["device"] == "kaggle:NvidiaTeslaT4"


def test_push_refuses_the_placeholder_user_and_a_missing_bundle(tiny_notebook, tmp_path, stand_in, capsys):
    run = K.bundle_kaggle("90_tiny", user=K.PLACEHOLDER_USER, out=tmp_path / "b")
    assert cli.main(["kaggle", "push", str(run)]) == 2
    assert "placeholder user" in capsys.readouterr().err
    assert cli.main(["kaggle", "pull", str(tmp_path / "nothing")]) == 2
    assert "no kernel-metadata.json" in capsys.readouterr().err
    assert stand_in.calls == []


def test_unreachable_api_is_one_line(tiny_notebook, tmp_path, monkeypatch, capsys):
    """Nothing listens at the proxy: the client's connection error becomes one line and exit 2, in seconds."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kc"))
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    run = K.bundle_kaggle("90_tiny", out=tmp_path / "b")
    assert cli.main(["kaggle", "status", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Kaggle API not reachable" in err and len(err.splitlines()) == 1
