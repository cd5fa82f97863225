"""ConfigCommand: the --config, --force and field flags, the config they describe, the reuse line."""

from __future__ import annotations

import argparse
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from overseer._config import ConfigMixin, option
from overseer.cli._config_command import ConfigCommand


@dataclass(frozen=True)
class ToyConfig(ConfigMixin):
    seeds: tuple[int, ...] = option((0,), "seeds")
    lr: float = option(1e-3, "learning rate")
    notes: dict = option({}, "free-form notes")


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch) -> ConfigCommand:
    module = types.ModuleType("toy_pillar_config")
    module.ToyConfig = ToyConfig  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "toy_pillar_config", module)
    return ConfigCommand("toy_pillar_config", "ToyConfig", thing="organism", redo="retrain")


def test_flags_override_the_layers_which_override_the_file(command: ConfigCommand, tmp_path: Path):
    parser = argparse.ArgumentParser()
    command.add_flags(parser)
    assert "retrain even if this exact organism is finished" in parser.format_help()
    config_file = tmp_path / "toy.yaml"
    config_file.write_text("lr: 0.5\nseeds: [3, 4]\n")
    args = parser.parse_args(["--config", str(config_file), "--lr", "0.25", "--force"])
    cfg = command.from_args(args, {"seeds": [7], "notes": {"a": 1}})
    assert cfg == ToyConfig(seeds=(7,), lr=0.25, notes={"a": 1}) and args.force
    assert command.from_args(parser.parse_args([])) == ToyConfig()


def test_the_reuse_line_comes_before_the_headline_only_when_reused(command: ConfigCommand,
                                                                  capsys: pytest.CaptureFixture):
    fresh = SimpleNamespace(reused=False, summary_line=lambda: "rate 0.5")
    command.print_headline(fresh)
    assert capsys.readouterr().out == "rate 0.5\n"
    command.print_headline(SimpleNamespace(reused=True, summary_line=lambda: "rate 0.5"))
    assert capsys.readouterr().out == (
        "finished organism found with this exact config; reusing it (--force to retrain)\nrate 0.5\n"
    )
