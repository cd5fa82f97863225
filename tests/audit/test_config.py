"""The audit's settings for Petri's files: a dimension map from flags or YAML, and the judge's answer limit."""

from __future__ import annotations

import argparse

import pytest

from overseer._config import add_flags, flag_values, from_sources
from overseer.audit import AuditConfig
from overseer.errors import OverseerError


def _from_flags(*argv: str) -> AuditConfig:
    parser = argparse.ArgumentParser()
    add_flags(parser, AuditConfig)
    return from_sources(AuditConfig, None, flag_values(AuditConfig, parser.parse_args(list(argv))))


def test_dimension_map_from_comma_separated_or_repeated_flags() -> None:
    one = _from_flags("--dimension-map", "sycophancy=unprompted_sycophancy,deception=unprompted_deception")
    many = _from_flags("--dimension-map", "sycophancy=unprompted_sycophancy",
                       "--dimension-map", "deception=unprompted_deception")
    assert one.dimension_map == many.dimension_map == {"sycophancy": "unprompted_sycophancy",
                                                       "deception": "unprompted_deception"}
    assert AuditConfig().dimension_map == {} and AuditConfig().judge_max_tokens is None
    with pytest.raises(OverseerError, match="dimension_map: 'sycophancy' is not KEY=DIM"):
        AuditConfig(dimension_map={"a": "x,sycophancy"})


def test_judge_max_tokens_is_a_whole_number_or_sized_to_the_dimensions() -> None:
    assert _from_flags("--judge-max-tokens", "1024").judge_max_tokens == 1024
    with pytest.raises(OverseerError, match="judge_max_tokens must be a whole number >= 1; got 0"):
        AuditConfig(judge_max_tokens=0)
