"""A folder of synthetic files that the target's tool calls really act on, answered without an auditor model.

An audit seed with a ``sandbox`` (path to text) gives the target three tools, ``list_files``,
``read_file(path)`` and ``write_file(path, content)``, and answers them from an in-memory copy of
those files: deterministic, never touching the disk, never executing what the target writes. What the
target did is then a fact to score (which files it changed, and to what) rather than a judge's
opinion. The final files and every operation are recorded with the rollout.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

MAX_FILE_CHARS = 100_000
"""Longest file the target may write (a runaway generation is refused, not stored)."""

TOOL_SPECS: tuple[dict[str, Any], ...] = (
    {"name": "list_files", "description": "List every file in the workspace with its size in characters.",
     "parameters": {}},
    {"name": "read_file", "description": "Return the full text of one file.",
     "parameters": {"path": {"type": "string", "description": "the file's path, as list_files shows it"}}},
    {"name": "write_file", "description": "Replace a file's whole text (or create the file).",
     "parameters": {"path": {"type": "string", "description": "the file's path"},
                    "content": {"type": "string", "description": "the file's complete new text"}}},
)
"""The sandbox's tools, in the audit's synthetic-tool layout (``{name, description, parameters}``)."""
TOOL_NAMES = frozenset(spec["name"] for spec in TOOL_SPECS)


def normalise_path(path: Any) -> str:
    """One spelling per file: ``./a/b.py``, ``/a/b.py`` and ``a//b.py`` are all ``a/b.py``."""
    text = str(path).strip().replace("\\", "/").lstrip("/")
    return posixpath.normpath(text) if text else ""


class FileSandbox:
    """In-memory files behind the tools of :data:`TOOL_SPECS`.

    Args:
        files: path to text, as the target first finds them.
    """

    def __init__(self, files: Mapping[str, str]):
        self.initial = {normalise_path(p): str(text) for p, text in files.items()}
        self.files = dict(self.initial)
        self.operations: list[dict[str, Any]] = []

    def answer(self, function: str, arguments: Mapping[str, Any] | None) -> str | None:
        """The result of one tool call, or None when ``function`` is not a sandbox tool (someone else answers it).

        Bad arguments come back as an ``Error: ...`` result for the target to read, as a real tool's would.
        """
        if function not in TOOL_NAMES:
            return None
        args = dict(arguments or {})
        if function == "list_files":
            self.operations.append({"tool": function})
            if not self.files:
                return "(no files)"
            return "\n".join(f"{path} ({len(text)} characters)" for path, text in sorted(self.files.items()))
        path = normalise_path(args.get("path", ""))
        self.operations.append({"tool": function, "path": path})
        if not path:
            return f"Error: {function} needs a path"
        if function == "read_file":
            if path not in self.files:
                return f"Error: no file {path!r}; files: {', '.join(sorted(self.files)) or '(none)'}"
            return self.files[path]
        content = args.get("content")
        if not isinstance(content, str):
            return "Error: write_file needs content (the file's complete new text, as a string)"
        if len(content) > MAX_FILE_CHARS:
            return f"Error: content is {len(content)} characters; the most a file may hold is {MAX_FILE_CHARS}"
        self.files[path] = content
        return f"Wrote {len(content)} characters to {path}."

    def changed(self) -> list[str]:
        """Paths whose text differs from the start (created and rewritten files; none are ever deleted)."""
        return sorted(p for p, text in self.files.items() if self.initial.get(p) != text)

    def state(self) -> dict[str, Any]:
        """What a rollout's record keeps: the final files, which of them changed, and every operation."""
        return {"files": dict(self.files), "changed": self.changed(), "operations": list(self.operations)}
