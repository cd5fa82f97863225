"""Reading YAML config files with one-line errors, shared by every config class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from overseer.errors import OverseerError


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """The parsed content of ``path`` (``{}`` when empty); a missing or invalid file is an OverseerError."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise OverseerError(f"{what} {str(path)!r} does not exist") from exc
    except IsADirectoryError as exc:
        raise OverseerError(f"{what} {str(path)!r} is a directory; give a YAML file") from exc
    except UnicodeDecodeError as exc:
        raise OverseerError(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.object[exc.start]:#04x}); "
                            "save it as UTF-8") from exc
    except OSError as exc:
        raise OverseerError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise OverseerError(f"{what} {str(path)!r} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    return data or {}
