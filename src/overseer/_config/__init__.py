"""Config dataclasses that make their own CLI flags and YAML keys, with one-line type errors.

A config is a frozen dataclass whose fields are declared with :func:`option` (a default and a help
string, as TRL's ``field(metadata={"help": ...})``). From the fields alone this module

* adds one argparse flag per field (:func:`add_flags`): ``n_train`` becomes ``--n-train``; the type
  comes from the annotation (``bool`` gives ``--x/--no-x``, a tuple takes several values, also
  comma-separated, ``dict`` fields take repeated ``--method-arg KEY=VALUE``), and a nested
  dataclass such as ``head: HeadConfig`` gives ``--head-lr``, ``--head-epochs``, ...;
* builds the dataclass from a YAML mapping (:func:`from_mapping`), refusing unknown keys with the
  allowed ones and wrong types with one line that names the field, the expected type and the value
  (``head.lr must be a number; got 'fast'``);
* merges a YAML file and then the flags given (:func:`from_sources`): flags override the file;
* checks a config built in Python the same way when it is constructed (:func:`check_fields`, run
  by :class:`ConfigMixin` before a config's own ``__post_init__``).

Adding a field to a config is one line: ``lr: float = option(1e-3, "learning rate")``. Fields that
many configs share (``runs_dir``, ``progress``, ``bootstrap``, ``max_in_flight``) are declared with
:func:`runs_dir_option` and its kin, so their flag, help and identity scope agree everywhere.

The work is split by job: :mod:`~overseer._config.fields` declares fields,
:mod:`~overseer._config.coerce` checks values against annotations,
:mod:`~overseer._config.mapping` builds configs from YAML and mappings, and
:mod:`~overseer._config.flags` makes and reads argparse flags.
"""

from overseer._config.coerce import check, check_kwargs, describe
from overseer._config.fields import (
    IDENTITY_SCOPES,
    bootstrap_option,
    in_flight_option,
    option,
    progress_option,
    runs_dir_option,
)
from overseer._config.flags import LazyFlagsParser, add_flags, flag_values
from overseer._config.mapping import ConfigMixin, check_fields, from_mapping, from_sources, merge

__all__ = [
    "IDENTITY_SCOPES",
    "ConfigMixin",
    "LazyFlagsParser",
    "add_flags",
    "bootstrap_option",
    "check",
    "check_fields",
    "check_kwargs",
    "describe",
    "flag_values",
    "from_mapping",
    "from_sources",
    "in_flight_option",
    "merge",
    "option",
    "progress_option",
    "runs_dir_option",
]
