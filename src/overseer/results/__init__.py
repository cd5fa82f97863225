"""The results layer: the run lifecycle, run directories, the run index and metrics, shared by every pillar."""

from overseer._storage import write_json
from overseer.results._checks import check_runs_dir
from overseer.results._index import index_run, list_runs, load_config, sync_index
from overseer.results._lifecycle import (
    RECORD_KEYS,
    RunResult,
    RunWriter,
    read_run,
    start_run,
    summary_formatter,
)
from overseer.results._rundir import (
    DEFAULT_RUNS_DIR,
    config_hash,
    is_finished,
    is_main_process,
    run_path,
    versions,
)
from overseer.results.stats import (
    NOT_AVAILABLE,
    Estimate,
    accuracy,
    auroc,
    auroc_estimate,
    bootstrap,
    check_confidence,
    estimate,
    estimates,
    interval,
    paired_mean_difference,
    pgr,
    stratified_bootstrap,
    wilson_interval,
)

__all__ = [
    "DEFAULT_RUNS_DIR",
    "NOT_AVAILABLE",
    "RECORD_KEYS",
    "Estimate",
    "RunResult",
    "RunWriter",
    "accuracy",
    "auroc",
    "auroc_estimate",
    "bootstrap",
    "check_confidence",
    "check_runs_dir",
    "config_hash",
    "estimate",
    "estimates",
    "index_run",
    "interval",
    "is_finished",
    "is_main_process",
    "list_runs",
    "load_config",
    "paired_mean_difference",
    "pgr",
    "read_run",
    "run_path",
    "start_run",
    "stratified_bootstrap",
    "summary_formatter",
    "sync_index",
    "versions",
    "wilson_interval",
    "write_json",
]
