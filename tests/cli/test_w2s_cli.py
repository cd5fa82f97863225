import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from overseer.cli.main import main


def _tiny_args(tiny_encoder: Path, tiny_causal: Path, out: Path) -> list[str]:
    return [
        "w2s",
        "run",
        "--weak",
        str(tiny_encoder),
        "--strong",
        str(tiny_causal),
        "--data-limit",
        "600",
        "--n-train",
        "120",
        "--n-test",
        "100",
        "--head-l2-grid",
        "1",
        "100",
        "--baseline-draws",
        "2",
        "--n-bootstrap",
        "100",
        "--out",
        str(out),
    ]


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err  # one line, no traceback
    return err[0]


def test_cli_run_prints_accuracies_pgr_and_path(
    tiny_encoder: Path, tiny_causal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_tiny_args(tiny_encoder, tiny_causal, tmp_path)) == 0
    out = capsys.readouterr().out
    assert "weak " in out and "student " in out and "ceiling " in out and "PGR" in out
    run_dir = Path(out.strip().splitlines()[-1].removeprefix("run: "))
    assert (run_dir / "metrics.json").is_file()
    assert main(["runs", "--out", str(tmp_path)]) == 0
    assert run_dir.name in capsys.readouterr().out


def test_cli_flags_override_yaml_config(tmp_path: Path) -> None:
    from overseer.cli.main import build_parser
    from overseer.cli.w2s import config_from_args

    config = tmp_path / "c.yaml"
    config.write_text("n_train: 50\nmethod: logconf\nmethod_args: {aux_coef: 0.75}\nhead: {epochs: 7}\n")
    args = build_parser().parse_args(["w2s", "run", "--config", str(config), "--n-train", "60", "--warmup-frac", "0.1"])
    cfg = config_from_args(args)
    assert cfg.n_train == 60 and cfg.method == "logconf" and cfg.head.epochs == 7
    assert cfg.method_args == {"aux_coef": 0.75, "warmup_frac": 0.1}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--dataset", "imdb"], "unknown dataset 'imdb'; allowed: "),
        (["--weak", "./no/such/model"], "unknown model './no/such/model'; allowed: "),
        (["--method", "magic"], "unknown method 'magic'; allowed: "),
        (["--lr", "nan"], "head lr must be a positive number; got nan"),
        (["--n-train", "50000"], "too small for splits of [50000, 50000, 1000]"),
        (["--head-lr", "fast"], "head.lr must be a number; got 'fast'"),
        (["--n-train", "many"], "n_train must be an integer; got 'many'"),
        (["--method", "logconf", "--method-arg", "aux_coef=abc"], "method_args.aux_coef must be a number; got 'abc'"),
        (["--method", "logconf", "--aux-coef", "abc"], "method_args.aux_coef must be a number; got 'abc'"),
        (["--method-arg", "aux_coef=0.5"], "unknown method_args key 'aux_coef' for method 'xent'; allowed: hard"),
    ],
)
def test_bad_input_is_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert expected in _error_line(capsys, ["w2s", "run", "--out", str(tmp_path), *argv])


def test_unknown_hub_model_offline_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    line = _error_line(
        capsys,
        ["w2s", "run", "--out", str(tmp_path), "--weak", "smollm2-135m-l99", "--n-train", "100", "--n-test", "100"],
    )
    assert "unknown ladder rung 'smollm2-135m-l99'" in line and "smollm2-135m-l8" in line


def test_bad_config_files_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("n_train: [1,\n")
    assert "is not valid YAML" in _error_line(capsys, ["w2s", "run", "--config", str(bad_yaml)])
    unknown_key = tmp_path / "unknown.yaml"
    unknown_key.write_text("n_trian: 10\n")
    assert "unknown config option 'n_trian'; allowed: " in _error_line(
        capsys, ["w2s", "run", "--config", str(unknown_key)]
    )
    wrong_type = tmp_path / "wrong_type.yaml"
    wrong_type.write_text("head: {lr: fast}\n")
    line = _error_line(capsys, ["w2s", "run", "--config", str(wrong_type)])
    assert line == "error: head.lr must be a number; got 'fast'"
    missing = str(tmp_path / "missing.yaml")
    assert "does not exist" in _error_line(capsys, ["w2s", "run", "--config", missing])


def test_missing_field_in_local_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "valid.csv"  # cosmos_qa's columns, made-up rows: no column is called "answer"
    data.write_text("id,context,question,answer0,answer1,answer2,answer3,label\n"
                    "q1,A dog barked.,Who barked?,The dog,The cat,A bird,None of the above choices .,0\n"
                    "q2,It rained.,What fell?,Snow,Rain,Hail,None of the above choices .,1\n")
    line = _error_line(
        capsys,
        [
            "w2s",
            "run",
            "--out",
            str(tmp_path),
            "--dataset",
            "local",
            "--data-path",
            str(data),
            "--text-field",
            "context",
            "--label-field",
            "answer",
        ],
    )
    assert "'answer'" in line and "label" in line


def test_ctrl_c_leaves_no_half_written_run(tiny_encoder: Path, tiny_causal: Path, tmp_path: Path) -> None:
    """SIGINT during the (deliberately long) bootstrap: exit 130, one line, and no run directory."""
    out = tmp_path / "runs"
    cache = tmp_path / "cache"
    argv = _tiny_args(tiny_encoder, tiny_causal, out)
    argv[argv.index("--n-bootstrap") + 1] = "1000000"
    env = {**os.environ, "OVERSEER_ACTIVATION_CACHE_DIR": str(cache)}
    # A shell without job control starts background jobs with SIGINT ignored, and children inherit that;
    # give the run the default disposition so Python installs its KeyboardInterrupt handler.
    proc = subprocess.Popen(
        [sys.executable, "-m", "overseer", *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cache.rglob("*.npy"))) < 2:  # one entry per model: the text union
        time.sleep(0.2)
    time.sleep(1.0)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=180)  # generous: a loaded 2-core CI machine is slow to unwind
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"no exit within 180 s of SIGINT; stderr: {err[-2000:]}") from None
    assert proc.returncode == 130
    assert "Traceback" not in err and "interrupted" in err
    assert not out.exists() or [p for p in out.iterdir() if p.name != "index.sqlite"] == []


def test_models_and_datasets_list_offline_entries(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    models = capsys.readouterr().out
    assert "smollm2-135m-l8" in models and "minilm-l6" in models
    assert main(["datasets"]) == 0
    assert "geo_facts" in capsys.readouterr().out


def test_runs_compare_shows_differences(
    tiny_encoder: Path, tiny_causal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = []
    for method in ("xent", "logconf"):
        assert main([*_tiny_args(tiny_encoder, tiny_causal, tmp_path), "--method", method]) == 0
        names.append(Path(capsys.readouterr().out.strip().splitlines()[-1].removeprefix("run: ")).name)
    assert main(["runs", "--out", str(tmp_path), *names]) == 0
    out = capsys.readouterr().out
    assert "config values that differ" in out and "logconf" in out
    assert json.loads((tmp_path / names[1] / "config.json").read_text())["config"]["method"] == "logconf"
