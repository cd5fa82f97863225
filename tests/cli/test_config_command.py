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
from overseer.cli._config_command import ConfigCommand, command_group


@dataclass(frozen=True)
class ToyConfig(ConfigMixin):
    seeds: tuple[int, ...] = option((0,), "seeds")
    lr: float = option(1e-3, "learning rate")
    notes: dict = option({}, "free-form notes")


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch) -> ConfigCommand:
    module = types.ModuleType("toy_pillar_config")
    module.ToyConfig = ToyConfig  # type: ignore[attr-defined]
    module.run = lambda cfg, force, **kw: SimpleNamespace(  # type: ignore[attr-defined]
        reused=not force, summary_line=lambda: f"lr {cfg.lr} {kw}")
    monkeypatch.setitem(sys.modules, "toy_pillar_config", module)
    return ConfigCommand("toy_pillar_config", "ToyConfig", thing="organism", redo="retrain", command="toy",
                         help="a toy command", description="Python equivalent: toy_pillar_config.run(ToyConfig(...))")


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


def test_a_command_runs_its_config_and_prints_the_headline(command: ConfigCommand, capsys: pytest.CaptureFixture):
    parser = argparse.ArgumentParser(prog="overseer")
    group = command_group(parser.add_subparsers(dest="command"), "toys", "toy commands")
    command.add_parser(group, lambda args: 0)
    args = parser.parse_args(["toys", "toy", "--lr", "0.5"])
    assert args.toys_command == "toy"
    assert args.func(args) == 0
    result = command.run(args, out="x")
    assert result.reused and capsys.readouterr().out == (
        "finished organism found with this exact config; reusing it (--force to retrain)\nlr 0.5 {'out': 'x'}\n"
    )



def test_a_command_is_added_under_its_word_with_its_help_and_description(command: ConfigCommand):
    parser = argparse.ArgumentParser(prog="overseer")
    commands = parser.add_subparsers(dest="command")
    toy = command.add_parser(command_group(commands, "toys", "toy commands"), lambda args: 0)
    assert toy.prog == "overseer toys toy"
    assert "a toy command" in commands.choices["toys"].format_help()
    toy_help = toy.format_help()
    assert "Python equivalent: toy_pillar_config.run(ToyConfig(...))" in toy_help
    assert "--config" in toy_help and "--lr" in toy_help


def test_a_command_with_more_flags_adds_them_instead(command: ConfigCommand):
    parser = argparse.ArgumentParser(prog="overseer")
    group = command_group(parser.add_subparsers(dest="command"), "toys", "toy commands")

    def add_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--behaviour")
        command.add_flags(p)

    command.add_parser(group, lambda args: 0, add_flags=add_flags)
    args = parser.parse_args(["toys", "toy", "--behaviour", "flattery", "--lr", "0.5"])
    assert args.behaviour == "flattery" and command.from_args(args) == ToyConfig(lr=0.5)
