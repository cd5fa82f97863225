"""The results layer: the run lifecycle, run directories, the run index and metrics, shared by every pillar."""

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
    write_json,
)
from overseer.results.metrics import Estimate, accuracy, auroc, bootstrap, estimate, estimates, interval, pgr

__all__ = [
    "DEFAULT_RUNS_DIR",
    "RECORD_KEYS",
    "Estimate",
    "RunResult",
    "RunWriter",
    "accuracy",
    "auroc",
    "bootstrap",
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
    "pgr",
    "read_run",
    "run_path",
    "start_run",
    "summary_formatter",
    "sync_index",
    "versions",
    "write_json",
]
