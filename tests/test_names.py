"""``overseer._names.safe_name``: the one check for user-given names that become path components."""

import pytest

from overseer._names import MAX_LENGTH, is_safe_name, safe_name
from overseer.errors import OverseerError


@pytest.mark.parametrize("name", ["tiny", "offline_ladder", "gpt2-xl.v2", "w2s-1a2b3c4d5e6f", "_x", "-",
                                  "a" * MAX_LENGTH])
def test_plain_names_pass_unchanged(name: str) -> None:
    assert safe_name(name, "sweep name") == name and is_safe_name(name)


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "a/b", "x/../../../elsewhere", "..\\x", "a\\b", "/abs",
                                  "a b", "a\nb", "a\0b", "café", "a:b", "~", "a" * (MAX_LENGTH + 1), None, 3, ["a"]])
def test_anything_else_is_one_line_naming_the_value_and_the_rule(name: object) -> None:
    assert not is_safe_name(name)
    with pytest.raises(OverseerError) as info:
        safe_name(name, "run name")
    message = str(info.value)
    assert message.startswith(f"run name {name!r} is not allowed; use letters, digits, '.', '_' and '-'")
    assert "\n" not in message and f"at most {MAX_LENGTH} characters" in message
