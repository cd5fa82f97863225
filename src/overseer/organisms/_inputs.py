"""The seed folder and dimensions file an organisms evaluation hands to the audit it runs as."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from overseer.audit.scenarios import Seed


def write_audit_inputs(folder: Path, seeds: Sequence[Seed], dimensions: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``seeds`` (one Petri seed file each) and ``dimensions`` (YAML) under ``folder``, once; return their paths.

    The folder is named by a hash of what it holds, so it is written only when missing, through a
    staging folder renamed into place: a reader never sees half of it.
    """
    import yaml

    if not (folder / "seeds").is_dir():
        staging = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "seeds").mkdir(parents=True)
        for seed in seeds:
            (staging / "seeds" / f"{seed.id}.md").write_text(seed.to_markdown())
        (staging / "dimensions.yaml").write_text(yaml.safe_dump(dict(dimensions), sort_keys=False, width=100))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    return folder / "seeds", folder / "dimensions.yaml"
