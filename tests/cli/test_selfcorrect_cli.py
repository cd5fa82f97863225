"""``overseer selfcorrect run``: flags made from SelfCorrectConfig's fields, and ``--config FILE`` like ``w2s run``."""

from pathlib import Path

import pytest

from overseer.cli.main import build_parser, main


def _config(argv: list[str]):
    from overseer.cli.selfcorrect import config_from_args

    return config_from_args(build_parser().parse_args(["selfcorrect", "run", *argv]))


def test_config_file_is_read_and_flags_override_it(tmp_path: Path) -> None:
    path = tmp_path / "sc.yaml"
    path.write_text("models: [a, b]\nsuites: winogender,law\nlimit: 5\nbbq_per_cell: 7\nprogress: false\n"
                    "extra: {note: hello}\n")
    cfg = _config(["--config", str(path), "--limit", "3", "--suite", "law"])
    assert cfg.models == ("a", "b") and cfg.suites == ("law",) and cfg.limit == 3 and cfg.bbq_per_cell == 7
    assert cfg.progress is False and cfg.extra == {"note": "hello"}


def test_every_old_flag_still_works() -> None:
    cfg = _config(["--model", "a,b", "--suite", "bbq", "--conditions", "q,if,cot", "--limit", "2", "--no-progress",
                   "--debias-order", "--out", "somewhere", "--bbq-answer", "letter", "--normalize", "sum",
                   "--endpoint-rps", "2.5", "--dtype", "float32", "--bbq-categories", "Age,Race_ethnicity"])
    assert cfg.models == ("a", "b") and cfg.suites == ("bbq",) and cfg.conditions == ("q", "if", "cot")
    assert cfg.limit == 2 and cfg.progress is False and cfg.debias_order is True and cfg.runs_dir == "somewhere"
    assert cfg.bbq_answer == "letter" and cfg.normalize == "sum" and cfg.endpoint_rps == 2.5 and cfg.dtype == "float32"
    assert cfg.bbq_categories == ("Age", "Race_ethnicity")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("suites: [bbq, truthfulqa]\n", "unknown suite 'truthfulqa'; allowed: bbq, law, winogender"),
        ("law_students: many\n", "law_students must be an integer; got 'many'"),
        ("dtype: float8\n", "dtype must be one of auto, float32, bfloat16, float16; got 'float8'"),
        ("modles: [a]\n", "unknown config option 'modles'; allowed: "),
    ],
)
def test_a_bad_config_file_is_one_line(yaml_text: str, message: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    assert main(["selfcorrect", "run", "--config", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "runs").exists()


def test_help_lists_the_config_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["selfcorrect", "run", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--config", "--model", "--suite", "--law-students", "--no-progress", "--out", "--extra KEY=VALUE"):
        assert flag in out, flag


def test_a_bbq_clone_root_is_refused_with_the_flag_that_works(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """BBQ's repository keeps its files in data/: pointed at the clone, the advice is --bbq-source CLONE/data."""
    clone = tmp_path / "BBQ"
    (clone / "data").mkdir(parents=True)
    (clone / "data" / "Age.jsonl").write_text("{}\n")
    for argv in (["--bbq-source", str(clone)], ["--data-dir", str(clone)]):
        assert main(["selfcorrect", "run", "--suite", "bbq", *argv, "--out", str(tmp_path / "runs")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
        assert f"give --bbq-source {clone / 'data'}" in err[0], err
    assert not (tmp_path / "runs").exists()
    from overseer.data.bbq import load_bbq, missing_bbq_files

    assert missing_bbq_files(clone / "data") is None
    from overseer.errors import OverseerError

    with pytest.raises(OverseerError, match=f"give --bbq-source {clone / 'data'}"):
        load_bbq(clone)
