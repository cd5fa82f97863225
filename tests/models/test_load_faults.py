"""Faults and bad input while loading models: devices, mistyped names, the hub offline, a full cache disk.

Every test here runs offline and fast: the hub is switched off or its check is replaced, CUDA and MPS
are switched off by monkeypatching torch (so the tests behave the same on GPU machines), and the
models are the tiny random ones from conftest.py.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from overseer.cli.main import main
from overseer.errors import OverseerError
from overseer.models import LADDER, _hub, _load, load_model, resolve_model
from overseer.models._devices import available_devices, resolve_device
from overseer.models._hub import _hub_reachable

# --------------------------------------------------------------------------- helpers


def _one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI, which must exit 2 with exactly one line on stderr (no traceback, no hub warnings)."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has neither CUDA nor MPS, whatever it really has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has two CUDA devices (only the checks are asked; nothing is put on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE is set; asking the network anyway fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(_hub, "_hub_reachable", _never_called)


@pytest.fixture
def hub_unreachable(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No offline variable, and the hub does not answer the quick check (the calls are recorded)."""
    import huggingface_hub.constants

    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    probed: list[str] = []

    def unreachable(endpoint: str, timeout_s: float = 2.0) -> bool:
        probed.append(endpoint)
        return False

    monkeypatch.setattr(_hub, "_hub_reachable", unreachable)
    return probed


def _never_called(*args: object, **kwargs: object) -> bool:
    raise AssertionError("the network was asked although HF_HUB_OFFLINE is set")


def _w2s_args(weak: str, strong: str, out: Path, *extra: str) -> list[str]:
    return ["w2s", "run", "--weak", weak, "--strong", strong, "--data-limit", "600", "--n-train", "120",
            "--n-test", "100", "--epochs", "3", "--n-bootstrap", "100", "--out", str(out), *extra]


def _no_run_written(out: Path) -> bool:
    return not out.exists() or not any(out.rglob("metrics.json"))


# --------------------------------------------------------------------------- devices


def test_cuda_without_cuda_names_the_available_devices(no_gpu: None) -> None:
    with pytest.raises(OverseerError, match=r"^device 'cuda': CUDA is not available, .*; available devices: cpu$"):
        resolve_device("cuda")
    with pytest.raises(OverseerError, match=r"^device 'cuda:1': CUDA is not available"):
        resolve_device("cuda:1")


def test_cuda_index_beyond_the_device_count(two_gpus: None) -> None:
    assert available_devices() == ["cpu", "cuda:0", "cuda:1"]
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device("cuda") == "cuda"
    with pytest.raises(
        OverseerError,
        match=r"^device 'cuda:2' does not exist: this machine has 2 CUDA devices; available devices: cpu, cuda:0, "
        r"cuda:1$",
    ):
        resolve_device("cuda:2")


@pytest.mark.parametrize("device", ["tpu", "gpu", "CUDA", "cuda:x", "cpu:0", "meta", ""])
def test_unknown_device_names_list_the_forms_and_what_is_here(device: str, no_gpu: None) -> None:
    with pytest.raises(OverseerError) as info:
        resolve_device(device)
    assert str(info.value) == (
        f"unknown device {device!r}; allowed: cpu, cuda, cuda:N, mps (available devices: cpu)"
    )


def test_mps_without_mps(no_gpu: None) -> None:
    with pytest.raises(OverseerError, match=r"^device 'mps': MPS .* is not available; available devices: cpu$"):
        resolve_device("mps")


def test_default_and_cpu_devices_pass(no_gpu: None) -> None:
    assert resolve_device(None) == "cpu"
    assert resolve_device("cpu") == "cpu"


def test_load_model_refuses_a_missing_device_before_loading(
    tiny_causal: Path, no_gpu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("weights were read before the device was checked")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", no_loading)
    with pytest.raises(OverseerError, match="CUDA is not available"):
        load_model(str(tiny_causal), device="cuda")
    with pytest.raises(OverseerError, match="unknown device 'tpu'"):
        load_model(str(tiny_causal), device="tpu")


def test_w2s_run_with_cuda_missing_is_one_line_before_the_data_loads(
    tiny_encoder: Path, tiny_causal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    no_gpu: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dataset was loaded before the device was checked")

    monkeypatch.setattr(importlib.import_module("overseer.w2s.run"), "load_dataset", no_data)
    out = tmp_path / "runs"
    line = _one_error_line(capsys, _w2s_args(str(tiny_encoder), str(tiny_causal), out, "--device", "cuda"))
    assert "device 'cuda': CUDA is not available" in line and line.endswith("available devices: cpu")
    assert _no_run_written(out)
    line = _one_error_line(capsys, _w2s_args(str(tiny_encoder), str(tiny_causal), out, "--device", "cuda:7"))
    assert "device 'cuda:7'" in line


def test_selfcorrect_run_with_cuda_missing_is_one_line_before_the_data_loads(
    tiny_causal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_gpu: None
) -> None:
    # The law suite's data file is empty: had the data been read first, that would be the error.
    (tmp_path / "data" / "law_school").mkdir(parents=True)
    (tmp_path / "data" / "law_school" / "law_data.csv").write_text("")
    out = tmp_path / "runs"
    line = _one_error_line(capsys, ["selfcorrect", "run", "--model", str(tiny_causal), "--device", "cuda",
                                    "--suite", "law", "--data-dir", str(tmp_path / "data"), "--no-progress",
                                    "--out", str(out)])
    assert "device 'cuda': CUDA is not available" in line and line.endswith("available devices: cpu")
    assert _no_run_written(out)


# --------------------------------------------------------------------------- mistyped names


@pytest.mark.parametrize("name", ["smollm2-135m-l99", "smollm2-135m-l12", "smollm2-135m-l0", "minilm-l6-l3"])
def test_a_rung_that_is_not_on_the_ladder_lists_the_rungs(name: str) -> None:
    with pytest.raises(OverseerError) as info:
        resolve_model(name)
    message = str(info.value)
    assert message.startswith(f"unknown ladder rung {name!r}; allowed rungs (weakest first): ")
    assert ", ".join(LADDER) in message and "num_layers=K" in message
    assert "K in 1..30" in message if name.startswith("smollm2") else "K in 1..6" in message


@pytest.mark.parametrize(
    ("name", "guess"),
    [("smolm2-135m", "smollm2-135m"), ("SmolLM2-135M", "smollm2-135m"), ("smollm2", "smollm2-135m"),
     ("minilm", "minilm-l6"), ("SmolLM2-135M-L8", "smollm2-135m-l8"), ("smollm2-135m-l8@main", "smollm2-135m-l8")],
)
def test_a_name_close_to_a_packaged_one_is_refused_with_a_guess(name: str, guess: str) -> None:
    with pytest.raises(OverseerError, match=f"^unknown model '{name}'; did you mean '{guess}'\\? offline names: "):
        resolve_model(name)


@pytest.mark.parametrize("name", ["gpt2", "distilgpt2", "bert-base-uncased", "EleutherAI/pythia-14m@main",
                                  "hf/smolm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", "org/smollm2-135m-l99"])
def test_hub_ids_are_not_mistaken_for_typos(name: str) -> None:
    spec = resolve_model(name)
    assert spec.is_hub and spec.source == name.removeprefix("hf/").partition("@")[0]


def test_w2s_run_with_a_mistyped_rung_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  hub_offline: None) -> None:
    started = time.monotonic()
    line = _one_error_line(capsys, ["w2s", "run", "--weak", "smollm2-135m-l99", "--out", str(tmp_path / "runs")])
    assert time.monotonic() - started < 3
    assert line.startswith("error: unknown ladder rung 'smollm2-135m-l99'; allowed rungs")
    assert _no_run_written(tmp_path / "runs")


# --------------------------------------------------------------------------- the hub offline


def test_unknown_name_with_hub_offline_fails_at_once_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], hub_offline: None
) -> None:
    started = time.monotonic()
    line = _one_error_line(capsys, ["w2s", "run", "--weak", "no-such-model", "--out", str(tmp_path / "runs")])
    assert time.monotonic() - started < 3
    assert line == (
        "error: cannot load model 'no-such-model': it is not in the local Hugging Face cache and HF_HUB_OFFLINE is "
        "set; offline names: minilm-l6, smollm2-135m, smollm2-135m-l16, smollm2-135m-l4, smollm2-135m-l8 (or a "
        "local directory or .gguf file)"
    )
    assert _no_run_written(tmp_path / "runs")


def test_transformers_offline_variable_counts_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(_hub, "_hub_reachable", _never_called)
    started = time.monotonic()
    with pytest.raises(OverseerError, match="TRANSFORMERS_OFFLINE is set; offline names: "):
        load_model("EleutherAI/pythia-14m", device="cpu")
    assert time.monotonic() - started < 3


def test_unknown_name_with_hub_unreachable_fails_at_once(hub_unreachable: list[str]) -> None:
    started = time.monotonic()
    with pytest.raises(OverseerError) as info:
        load_model("no-such-model", device="cpu")
    assert time.monotonic() - started < 3
    assert "huggingface.co cannot be reached; offline names: minilm-l6, smollm2-135m" in str(info.value)
    assert hub_unreachable and "huggingface.co" in hub_unreachable[0]
    with pytest.raises(OverseerError, match="cannot be reached"):
        _load.model_kind("EleutherAI/pythia-14m")


def _fake_hub_cache(cache: Path, repo_id: str, files_from: Path) -> None:
    """Lay ``files_from`` out as huggingface_hub's cache holds a downloaded repo (refs/main -> snapshot)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for f in files_from.iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)


@pytest.mark.parametrize("why", ["variable", "unreachable"])
def test_a_cached_hub_model_loads_offline_without_asking_the_network(
    why: str, tiny_causal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str], request: pytest.FixtureRequest,
) -> None:
    import huggingface_hub.constants

    request.getfixturevalue("hub_offline" if why == "variable" else "hub_unreachable")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    _fake_hub_cache(tmp_path, "someone/tiny-llama", tiny_causal)
    started = time.monotonic()
    lm = load_model("someone/tiny-llama", device="cpu")
    assert _load.model_kind("someone/tiny-llama") == "causal"
    assert time.monotonic() - started < 10  # a request with retries would take half a minute
    assert lm.kind == "causal" and lm.num_layers == 3
    assert "Retrying" not in capfd.readouterr().err


def test_the_hub_check_asks_once_with_a_short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # its client refuses every request
    monkeypatch.setattr(_hub, "_hub_probes", {})
    with socket.socket() as s:  # a port nothing listens on: refused at once
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    assert _hub_reachable(closed) is False
    assert time.monotonic() - started < 3

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert _hub_reachable(f"http://127.0.0.1:{server.server_address[1]}") is True
    finally:
        server.shutdown()
        server.server_close()

    silent = socket.socket()  # accepts connections, never answers: the timeout bounds the wait
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        started = time.monotonic()
        assert _hub_reachable(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.5) is False
        assert time.monotonic() - started < 2
    finally:
        silent.close()
    assert _hub_reachable(closed) is False and len(_hub._hub_probes) == 3  # remembered, not asked again


# --------------------------------------------------------------------------- a full disk under the GGUF cache


@pytest.fixture
def gguf_from_tiny(tiny_causal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``.gguf`` path whose "de-quantisation" loads the tiny model, and a cache under tmp_path."""
    import transformers

    model_loader = transformers.AutoModelForCausalLM.from_pretrained
    tokenizer_loader = transformers.AutoTokenizer.from_pretrained

    def from_gguf(loader):  # noqa: ANN001, ANN202 - wraps a bound from_pretrained
        def load(source: object, *args: object, gguf_file: str | None = None, **kwargs: object) -> object:
            return loader(tiny_causal if gguf_file else source, *args, **kwargs)

        return load

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", from_gguf(model_loader))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", from_gguf(tokenizer_loader))
    monkeypatch.setenv("OVERSEER_CACHE_DIR", str(tmp_path / "cache"))
    gguf = tmp_path / "tiny.Q4_0.gguf"
    gguf.write_bytes(b"GGUF")
    return gguf


def test_a_full_disk_while_caching_a_gguf_model_warns_and_goes_on(
    gguf_from_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import transformers
    from safetensors import SafetensorError

    def disk_full(self: object, directory: str | Path, *args: object, **kwargs: object) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "model.safetensors").write_bytes(b"half a tens")  # what a full disk leaves behind
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", disk_full)
    lm = load_model(str(gguf_from_tiny), device="cpu")
    assert lm.kind == "causal" and lm.num_layers == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"warning: could not cache the de-quantised model at {tmp_path / 'cache' / 'models'}")
    assert "No space left on device" in err[0]
    assert not any((tmp_path / "cache" / "models").iterdir())  # no temporary or half-written directory is left


def test_an_interrupted_gguf_cache_write_leaves_nothing(
    gguf_from_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    def interrupted(self: object, directory: str | Path, *args: object, **kwargs: object) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_model(str(gguf_from_tiny), device="cpu")
    assert not any((tmp_path / "cache" / "models").iterdir())


def test_the_gguf_cache_is_written_and_reused_when_the_disk_is_fine(
    gguf_from_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = load_model(str(gguf_from_tiny), device="cpu")
    (cached,) = (tmp_path / "cache" / "models").iterdir()
    assert (cached / "config.json").is_file() and "warning" not in capsys.readouterr().err
    second = load_model(str(gguf_from_tiny), device="cpu")
    torch.testing.assert_close(second.model.lm_head.weight, first.model.lm_head.weight)
