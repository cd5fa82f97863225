"""Config dataclasses make their own flags and YAML keys, check types in one line, and let flags override files."""

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from overseer._config import (
    ConfigMixin,
    LazyFlagsParser,
    add_flags,
    bootstrap_option,
    check_kwargs,
    flag_values,
    from_mapping,
    from_sources,
    in_flight_option,
    option,
    progress_option,
    runs_dir_option,
)
from overseer.errors import OverseerError


@dataclass(frozen=True)
class Inner(ConfigMixin):
    lr: float = option(1e-3, "learning rate", aliases=("--lr",))
    epochs: int = option(3, "epochs")


@dataclass(frozen=True)
class Toy(ConfigMixin):
    name: str = option("a", "a name")
    count: int | None = option(None, "how many (default: all)")
    seeds: tuple[int, ...] = option((0,), "seeds")
    tags: tuple[str, ...] = option(("x",), "tags", flag="--tag", aliases=("--tags",))
    verbose: bool = option(False, "talk more")
    progress: bool = option(True, "progress bars")
    mode: str = option("fast", "how fast", choices=("fast", "slow"))
    method_args: dict[str, Any] = option({}, "method hyperparameters")
    inner: Inner = option(Inner(), "the inner settings")


def _parser(cls: type = Toy) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toy")
    parser.add_argument("--config")
    add_flags(parser, cls)
    return parser


def _from_flags(argv: list[str], cls: type = Toy) -> Any:
    args = _parser(cls).parse_args(argv)
    return from_sources(cls, args.config, flag_values(cls, args))


def test_flags_come_from_the_fields_with_their_help() -> None:
    text = _parser().format_help()
    for flag in ("--name", "--count", "--seeds", "--tag", "--tags", "--verbose", "--no-verbose", "--no-progress",
                 "--mode", "--method-arg KEY=VALUE", "--inner-lr", "--lr", "--inner-epochs"):
        assert flag in text, flag
    assert "how many (default: all)" in text and "inner options" in text and "the inner settings" in text
    assert "(default: fast)" in text and "{fast,slow}" in text


def test_flags_are_typed_from_the_annotations() -> None:
    cfg = _from_flags(["--count", "3", "--seeds", "0", "1,2", "--tag", "a,b", "--verbose", "--no-progress",
                       "--mode", "slow", "--method-arg", "k=0.5", "--method-arg", "hard=true", "--lr", "0.01",
                       "--inner-epochs", "7"])
    assert cfg == Toy(count=3, seeds=(0, 1, 2), tags=("a", "b"), verbose=True, progress=False, mode="slow",
                      method_args={"k": 0.5, "hard": True}, inner=Inner(lr=0.01, epochs=7))
    assert _from_flags(["--count", "none"]).count is None  # an Optional field takes none
    assert _from_flags([]) == Toy()  # flags left out keep the defaults


def test_adding_a_field_is_one_line() -> None:
    Bigger = dataclasses.make_dataclass(
        "Bigger", [("warmup", float, option(0.2, "share of training spent warming up"))], bases=(Toy,), frozen=True)
    assert "--warmup FLOAT" in _parser(Bigger).format_help()
    assert _from_flags(["--warmup", "0.5"], Bigger).warmup == 0.5
    assert from_mapping(Bigger, {"warmup": 0.1, "name": "b"}).warmup == 0.1


def test_yaml_refuses_unknown_keys_with_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(OverseerError, match=r"unknown config option 'cuont'; allowed: count, inner, method_args,"):
        from_mapping(Toy, {"cuont": 1})
    with pytest.raises(OverseerError, match=r"unknown inner option 'lrr'; allowed: epochs, lr$"):
        from_mapping(Toy, {"inner": {"lrr": 1}})
    path = tmp_path / "bad.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(OverseerError, match="must be a mapping of options; got list"):
        Toy.from_yaml(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"inner": {"lr": "fast"}}, "inner.lr must be a number; got 'fast'"),
        ({"inner": {"epochs": 2.5}}, "inner.epochs must be an integer; got 2.5"),
        ({"count": "many"}, "count must be an integer or null; got 'many'"),
        ({"seeds": [0, "a"]}, "seeds must be a list of integers; got [0, 'a']"),
        ({"verbose": "maybe"}, "verbose must be true or false; got 'maybe'"),
        ({"name": 3}, "name must be a string; got 3"),
        ({"method_args": [1]}, "method_args must be a mapping; got [1]"),
        ({"mode": "medium"}, "mode must be one of fast, slow; got 'medium'"),
        ({"inner": 5}, "inner must be a mapping of options; got int"),
    ],
)
def test_a_wrong_type_is_one_line_naming_field_type_and_value(data: dict, message: str) -> None:
    with pytest.raises(OverseerError) as info:
        from_mapping(Toy, data)
    assert str(info.value) == message


def test_a_wrong_type_on_the_command_line_is_one_line() -> None:
    with pytest.raises(OverseerError, match=r"^inner.epochs must be an integer; got 'two'$"):
        _from_flags(["--inner-epochs", "two"])
    with pytest.raises(OverseerError, match=r"^method_args value 'k' is not KEY=VALUE$"):
        _from_flags(["--method-arg", "k"])


def test_yaml_values_are_kept_as_written() -> None:
    cfg = from_mapping(Toy, {"seeds": 4, "tags": "a, b", "inner": {"lr": 1}})
    assert cfg.seeds == (4,) and cfg.tags == ("a", "b")
    assert cfg.inner.lr == 1 and isinstance(cfg.inner.lr, int)  # 1 stays 1: run hashes do not change
    assert from_mapping(Toy, {"inner": {"lr": "1e-3"}}).inner.lr == 0.001  # YAML reads 1e-3 as a string
    assert Toy.from_dict(Toy().to_dict()) == Toy()
    assert Toy().to_dict()["seeds"] == [0] and Toy().to_dict()["inner"] == {"lr": 1e-3, "epochs": 3}


def test_flags_override_the_file_and_mappings_merge(tmp_path: Path) -> None:
    path = tmp_path / "toy.yaml"
    path.write_text("name: b\ncount: 2\nseeds: [1, 2]\ninner: {lr: 0.1, epochs: 5}\nmethod_args: {a: 1}\n")
    cfg = _from_flags(["--config", str(path), "--count", "3", "--lr", "0.5", "--method-arg", "b=2"])
    assert cfg == Toy(name="b", count=3, seeds=(1, 2), inner=Inner(lr=0.5, epochs=5), method_args={"a": 1, "b": 2})


def test_keyword_arguments_are_checked_against_a_signature() -> None:
    def method(aux_coef: float = 0.5, mode: Literal["drop", "keep"] = "drop", chain: list[str] | None = None) -> None:
        """A method factory."""

    checked = check_kwargs(method, {"aux_coef": "0.25", "chain": ["a"]}, "method_args", "method 'm'")
    assert checked == {"aux_coef": 0.25, "chain": ["a"]}
    with pytest.raises(OverseerError, match=r"^method_args.aux_coef must be a number; got 'abc'$"):
        check_kwargs(method, {"aux_coef": "abc"}, "method_args", "method 'm'")
    with pytest.raises(OverseerError, match=r"^method_args.mode must be one of 'drop', 'keep'; got 'x'$"):
        check_kwargs(method, {"mode": "x"}, "method_args", "method 'm'")
    with pytest.raises(OverseerError, match=r"unknown method_args key 'nope' for method 'm'; allowed: aux_coef, chain"):
        check_kwargs(method, {"nope": 1}, "method_args", "method 'm'")


def test_lazy_parser_adds_its_flags_only_when_used() -> None:
    calls = []

    def add(parser: argparse.ArgumentParser) -> None:
        calls.append(1)
        add_flags(parser, Toy)

    top = argparse.ArgumentParser(prog="top")
    sub = top.add_subparsers(dest="cmd", parser_class=LazyFlagsParser)
    sub.add_parser("run", add_config_flags=add)
    sub.add_parser("other")
    assert top.parse_args(["other"]).cmd == "other" and calls == []
    assert top.parse_args(["run", "--inner-lr", "0.1"]).__dict__["inner.lr"] == "0.1" and calls == [1]


def test_w2s_config_fields_are_flags_with_their_old_names() -> None:
    from overseer.cli.main import build_parser
    from overseer.cli.w2s import config_from_args
    from overseer.w2s import HeadConfig, W2SConfig

    help_text = dataclasses.fields(W2SConfig)[0].metadata["help"]
    assert "registered dataset" in help_text and all(f.metadata.get("help") for f in dataclasses.fields(HeadConfig))
    parse = build_parser().parse_args
    for old, new in (("--lr", "--head-lr"), ("--epochs", "--head-epochs"), ("--hidden-dim", "--head-hidden-dim"),
                     ("--l2", "--head-l2")):
        assert config_from_args(parse(["w2s", "run", old, "3"])) == config_from_args(parse(["w2s", "run", new, "3"]))
    cfg = config_from_args(parse(["w2s", "run", "--head-batch-size", "16", "--seeds", "0", "1", "--hard-labels",
                                  "--trust-remote-code", "--dataset-arg", "limit=10"]))
    assert cfg.head.batch_size == 16 and cfg.seeds == (0, 1) and cfg.method_args == {"hard": True}
    assert cfg.trust_remote_code is True and cfg.dataset_args == {"limit": 10}


@pytest.mark.parametrize(("old", "new"), [("weight_decay", "l2"), ("weight_decay_grid", "l2_grid")])
def test_a_renamed_head_option_is_refused_with_what_replaced_it(old: str, new: str) -> None:
    from overseer.w2s import W2SConfig

    with pytest.raises(OverseerError, match=f"^head option '{old}' was replaced by {new}, .*1/C.*afresh"):
        W2SConfig.from_dict({"head": {old: 10.0}})


@dataclass(frozen=True)
class Scoped(ConfigMixin):
    steps: int = option(10, "training steps")
    bootstrap: int = option(1000, "resamples", identity="report")
    progress: bool = option(True, "bars", identity="none")
    inner: Inner = option(Inner(), "nested")


def test_identity_is_declared_beside_each_field() -> None:
    cfg = Scoped()
    assert cfg.identity() == {"steps": 10, "bootstrap": 1000, "inner": {"lr": 1e-3, "epochs": 3}}
    assert cfg.identity("work") == {"steps": 10, "inner": {"lr": 1e-3, "epochs": 3}}
    with pytest.raises(ValueError, match="identity must be one of work, report, none"):
        option(1, "x", identity="sometimes")


@dataclass(frozen=True)
class Shared(ConfigMixin):
    steps: int = option(10, "steps")
    bootstrap: int = bootstrap_option()
    max_in_flight: int = in_flight_option("scenarios")
    runs_dir: str | None = runs_dir_option()
    progress: bool = progress_option("print one line per stage")


def test_shared_fields_have_one_flag_help_and_identity() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser, Shared)
    text = " ".join(parser.format_help().split())
    for expected in ("--out TEXT, --runs-dir TEXT where run directories go (default ./runs)",
                     "bootstrap resamples of each interval", "scenarios run concurrently", "print one line per stage"):
        assert expected in text
    args = parser.parse_args(["--runs-dir", "elsewhere", "--max-in-flight", "2", "--no-progress", "--bootstrap", "9"])
    cfg = from_sources(Shared, None, flag_values(Shared, args))
    assert (cfg.runs_dir, cfg.max_in_flight, cfg.progress) == ("elsewhere", 2, False)
    assert cfg.identity() == {"steps": 10, "bootstrap": 9} and cfg.identity("work") == {"steps": 10}


def _pillar_configs() -> list[Any]:
    from overseer.audit import AuditConfig
    from overseer.guard import GuardConfig
    from overseer.organisms.faking import FakingConfig
    from overseer.organisms.game import GameConfig
    from overseer.organisms.implants import ImplantConfig
    from overseer.organisms.poison import PoisonConfig
    from overseer.organisms.tampering import TamperingConfig
    from overseer.pvg import PVGConfig
    from overseer.selfcorrect.config import SelfCorrectConfig
    from overseer.w2s import W2SConfig

    return [W2SConfig(), SelfCorrectConfig(), PVGConfig(), AuditConfig(), PoisonConfig(), ImplantConfig(),
            FakingConfig(), TamperingConfig(), GameConfig(organisms=("a", "a-control")), GuardConfig()]


@pytest.mark.parametrize("cfg", _pillar_configs(), ids=lambda c: type(c).__name__)
def test_every_pillar_hashes_its_bootstrap_but_not_its_progress(cfg: Any) -> None:
    """The bootstrap changes the reported intervals: a new run, on the same work; progress changes nothing."""
    field = "n_bootstrap" if hasattr(cfg, "n_bootstrap") else "bootstrap"
    if hasattr(cfg, field):
        resampled = dataclasses.replace(cfg, **{field: getattr(cfg, field) + 1})
        assert resampled.identity() != cfg.identity()
        assert resampled.identity("work") == cfg.identity("work")
    if hasattr(cfg, "progress"):
        assert dataclasses.replace(cfg, progress=not cfg.progress).identity() == cfg.identity()
    if hasattr(cfg, "runs_dir"):
        assert dataclasses.replace(cfg, runs_dir="elsewhere").identity() == cfg.identity()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": "many"}, "count must be an integer or null; got 'many'"),
        ({"seeds": (0, "a")}, "seeds must be a list of integers; got (0, 'a')"),
        ({"verbose": "yes"}, "verbose must be true or false; got 'yes'"),
        ({"mode": "medium"}, "mode must be one of fast, slow; got 'medium'"),
        ({"inner": {"lr": "fast"}}, "inner.lr must be a number; got 'fast'"),
        ({"inner": 5}, "inner must be a mapping of options; got 5"),
    ],
)
def test_a_config_built_in_python_is_checked_like_yaml(kwargs: dict, message: str) -> None:
    with pytest.raises(OverseerError) as info:
        Toy(**kwargs)
    assert str(info.value) == message
    with pytest.raises(OverseerError, match=r"^epochs must be an integer; got 2.5$"):
        dataclasses.replace(Inner(), epochs=2.5)  # replace builds a new config: checked too


def test_construction_coerces_only_as_yaml_does() -> None:
    cfg = Toy(seeds=[1, 2], tags="a, b", inner={"lr": "1e-3"})
    assert cfg == Toy(seeds=(1, 2), tags=("a", "b"), inner=Inner(lr=1e-3))
    assert Inner(lr=1).lr == 1 and isinstance(Inner(lr=1).lr, int)  # 1 stays 1: run hashes do not change
    assert Toy(seeds="1, 2").seeds == (1, 2) == from_mapping(Toy, {"seeds": "1,2"}).seeds  # one string: its parts
    kept = {"k": 1}
    assert Toy(method_args=kept).method_args == kept


@dataclass(frozen=True)
class Checked(ConfigMixin):
    """A config with its own ``__post_init__`` that does not call ``super()``."""

    lr: float = option(0.1, "learning rate")
    seen: list = dataclasses.field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        self.seen.append(type(self.lr))
        if self.lr <= 0:  # a string here would be a TypeError, not this line
            raise OverseerError(f"lr must be positive; got {self.lr}")


@dataclass(frozen=True)
class CheckedMore(Checked):
    """A subclass whose ``__post_init__`` calls its parent's."""

    steps: int = option(1, "steps")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.seen.append("more")


def test_own_post_init_runs_after_the_type_check() -> None:
    assert Checked(lr="5e-5").seen == [float]  # checked (and parsed) first, then the config's own check, once
    with pytest.raises(OverseerError, match=r"^lr must be a number; got 'fast'$"):
        Checked(lr="fast")
    with pytest.raises(OverseerError, match=r"^lr must be positive; got -1$"):
        Checked(lr=-1)
    assert CheckedMore(lr="0.5").seen == [float, "more"]
    with pytest.raises(OverseerError, match=r"^steps must be an integer; got 'x'$"):
        CheckedMore(steps="x")


# config_hash(cfg.identity()) of each pillar's default config, measured on the code before configs were
# checked on construction: a change here moves every default run to a new directory.
_DEFAULT_HASHES = {
    "W2SConfig": ("7482392ebb1d", "ba6b3e21bea9"),  # since L2-penalised converged heads and baseline_draws (issue 26)
    "SelfCorrectConfig": ("24094021474e", "2cb3b371a6bd"),  # data_dir="/pinned/data"; since scoring (issue 26)
    "PVGConfig": ("c0d6122c4617", "c0d6122c4617"),  # since the tiny verifier reads facts and its likelihood (23)
    "AuditConfig": ("b7349f167c54", "8fbb4f46945a"),  # since the default auditor is auto (issue 25)
    "PoisonConfig": ("ce8a1e52f528", "4abb3f35b5fd"),  # since the paper's lengths and the clean-data axis (issue 24)
    "ImplantConfig": ("a425988a26ae", "64bc7ea050b2"),
    "FakingConfig": ("3515a5f7b772", "d9275ae5eedd"),
    "TamperingConfig": ("14f80be60bf1", "14e61cf1f6c7"),
    "GameConfig": ("2725c366aa2c", "f8eb1e93d4c7"),  # since the rebuilt techniques (issue 24 item 4)
    "GuardConfig": ("a2efa52cb246", "d182e426fc8f"),  # the first guard pillar (issue 27)
}


@pytest.mark.parametrize("cfg", _pillar_configs(), ids=lambda c: type(c).__name__)
def test_every_pillars_default_run_keeps_its_hash(cfg: Any) -> None:
    from overseer.results import config_hash

    if hasattr(cfg, "data_dir"):  # its default is a folder beside the checkout, which differs between clones
        cfg = dataclasses.replace(cfg, data_dir="/pinned/data")

    assert (config_hash(cfg.identity()), config_hash(cfg.identity("work"))) == _DEFAULT_HASHES[type(cfg).__name__]


def test_every_config_field_is_checked_on_construction() -> None:
    """An annotation that does not resolve would silently skip the checks: every config's must."""
    from overseer._config.coerce import type_hints
    from overseer.models import ClassifierConfig, LMTrainConfig
    from overseer.w2s import HeadConfig
    from overseer.w2s.finetune import FinetuneConfig

    for cls in [type(c) for c in _pillar_configs()] + [HeadConfig, LMTrainConfig, FinetuneConfig, ClassifierConfig]:
        assert {f.name for f in dataclasses.fields(cls) if f.init} <= set(type_hints(cls)), cls.__name__
