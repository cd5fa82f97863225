"""Audit techniques: each is one file with one ``@game_technique("name")`` function.

Importing this package registers the built-in ones. See
:data:`~overseer.organisms.game.techniques.base.Technique` for the contract.
"""

from overseer.organisms.game.techniques import activation_diff, behavioral, data_search, probe  # noqa: F401  (registers the built-in techniques)
from overseer.organisms.game.techniques.base import Technique, find_technique, game_technique, technique_names

TECHNIQUES = ("behavioral", "probe", "activation_diff", "data_search")
"""The built-in techniques in the order a game plays and reports them by default."""

__all__ = ["TECHNIQUES", "Technique", "find_technique", "game_technique", "technique_names"]
