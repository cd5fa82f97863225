"""The results layer: run directories, the run index, metrics and plots, shared by every pillar."""

from overseer.results._index import index_run, list_runs, load_config, sync_index
from overseer.results._rundir import (
    DEFAULT_RUNS_DIR,
    RunWriter,
    config_hash,
    is_finished,
    is_main_process,
    run_path,
    versions,
    write_json,
)
from overseer.results.metrics import Estimate, accuracy, auroc, bootstrap, interval, pgr

__all__ = [
    "DEFAULT_RUNS_DIR",
    "Estimate",
    "RunWriter",
    "accuracy",
    "auroc",
    "bootstrap",
    "config_hash",
    "index_run",
    "interval",
    "is_finished",
    "is_main_process",
    "list_runs",
    "load_config",
    "pgr",
    "run_path",
    "sync_index",
    "versions",
    "write_json",
]
