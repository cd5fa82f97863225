"""What a self-correction run can refuse in a second, before any model, dataset or heavy library is loaded.

``overseer selfcorrect run`` calls :func:`check_run` before it imports the pillar's run module, and
:func:`overseer.selfcorrect.run` calls it again (cheaply), so library users get the same early refusals.
"""

from __future__ import annotations

from pathlib import Path

from overseer.data.bbq import missing_bbq_files
from overseer.errors import OverseerError
from overseer.models import check_device, check_model_specs
from overseer.results import check_runs_dir
from overseer.selfcorrect.config import SelfCorrectConfig, model_spec


def check_run(cfg: SelfCorrectConfig) -> None:
    """Everything a self-correction run can refuse before loading data or models: names, device, data files."""
    if "hf" in check_model_specs(model_spec(m, cfg) for m in cfg.models):
        check_device(cfg.device)  # only local models run on it
    root = cfg.data_path
    if cfg.data_dir and not root.is_dir():
        raise OverseerError(f"--data-dir {cfg.data_dir!r} is not a directory; give the folder holding bbq/, "
                            "winogender/ and law_school/")
    if "bbq" in cfg.suites and not (cfg.bbq_source or "").startswith("hf:"):
        problem = missing_bbq_files(Path(cfg.bbq_source).expanduser() if cfg.bbq_source else root / "bbq")
        if problem:
            raise OverseerError(problem)
    wanted = {
        "winogender": ("winogender/templates.tsv", "winogender/occupations-stats.tsv"),
        "law": ("law_school/law_data.csv",),
    }
    for suite in cfg.suites:
        for relative in wanted.get(suite, ()):
            if not (root / relative).is_file():
                raise OverseerError(f"{suite} data file {str(root / relative)!r} not found; point --data-dir at "
                                    f"a folder with {relative.split('/')[0]}/ (or drop --suite {suite})")
    check_runs_dir(cfg.runs_dir)
