"""Audit scenarios ("seeds") and judge dimensions, in Petri's Markdown format.

A seed is a Markdown file whose optional YAML front matter carries ``tags`` (and anything else),
and whose body is the instruction an auditor model follows; the file name is the seed's id.
Overseer reads five more front-matter keys, which Petri ignores:

* ``behavior``: the behaviour the seed probes (else its first tag);
* ``dimension``: the judge dimension its rate is read on (see :func:`overseer.audit.task.behaviour_dimension`);
* ``target_system``: the target's system message, set before anything else when given;
* ``turns``: the script a scripted auditor plays (no auditor model needed): a list whose entries
  are a string or ``{user: TEXT}`` (send a message), ``{system: TEXT}``, ``{tool: {name,
  description, parameters, result}}`` (give the target a synthetic tool; ``result``, optional, is what
  its calls return when the script goes on without a ``tool_result``), ``{tool_result: TEXT}`` (answer
  the target's pending tool call), ``{remove_tool: NAME}`` (take a tool away), ``{prefill: TEXT}`` (the
  reply to the next ``user``, ``tool_result`` or ``resume`` turn starts with TEXT, which the target
  continues), ``{resume: true}`` (the target continues its last reply), ``{rollback: N}`` (keep the first
  N target messages), ``{restart: true}`` (wipe the conversation; system message and tools stay) or
  ``{end: true}``;
* ``sandbox``: files (path to text) that the target can list, read and write through three tools
  answered by :class:`overseer.audit.sandbox.FileSandbox` rather than by the auditor; the files as
  the target left them are recorded with the rollout.

Seeds may also come as JSON lines or a JSON list of records (``{id, input, metadata}``, inspect's sample
form, as Petri reads them); ``id:A,B`` names built-in seeds. Blank lines before the front matter are skipped.

A dimension file has front matter with ``description`` (and optionally ``display_name``,
``question``, ``tags``); its body is the 1-10 scoring rubric. ``question`` is the yes/no form a
log-probability judge asks; when absent it is derived from the description. A YAML file of dimensions
maps each name to its description, or lists them as Petri does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from overseer.data import json_lines
from overseer.errors import OverseerError

BUILTIN = "builtin"
"""Seed or dimension source meaning: the set shipped with Overseer (written here)."""
PETRI = "petri"
"""Seed or dimension source meaning: the seeds (173) or dimensions (38) of the installed inspect-petri package,
read from it at run time (the ``petri`` extra; see :mod:`overseer.audit.petri`)."""
GIVEN = "given"
"""Seed or dimension source meaning: given as objects to :func:`overseer.audit.run_seeds` (recorded, never read)."""
RECORD_SUFFIXES = (".jsonl", ".json")
"""Seed files read as records (inspect samples), one seed each, rather than as one Markdown seed."""
SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
"""What a seed id given in a JSON record may hold: it names the rollout's files, so no folders and no ``#``."""
ACTIONS = ("user", "system", "tool", "tool_result", "remove_tool", "prefill", "resume", "rollback", "restart", "end")
"""What one scripted turn may do."""

_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?\n?", re.DOTALL | re.MULTILINE)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class _FileText(str):
    """A sandbox file's text, written as a YAML block (``|``) so that the seed file shows it as it is."""


class _SeedDumper(yaml.SafeDumper):
    """``yaml.safe_dump``, plus sandbox files as blocks (PyYAML quotes a text a block cannot hold)."""


_SeedDumper.add_representer(
    _FileText, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", str(text), style="|"))


@dataclass(frozen=True)
class Seed:
    """One audit scenario: an instruction for the auditor, tags, and optionally a scripted conversation."""

    id: str
    instruction: str
    tags: tuple[str, ...] = ()
    behavior: str | None = None
    target_system: str | None = None
    turns: tuple[dict[str, Any], ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    """Other front-matter keys, kept as written."""
    path: str | None = None
    sandbox: dict[str, str] = field(default_factory=dict)
    """Files the target's sandbox tools act on (path to text); empty: no sandbox."""
    dimension: str | None = None
    """The judge dimension this seed's rate is read on (front-matter ``dimension``); None: found from its tags."""
    tools: tuple[dict[str, Any], ...] = ()
    """Tools the target has from the start (``{name, description, parameters, result?}``), whose calls the
    auditor answers (a model auditor simulates them; a script gives ``result`` or a default)."""

    @property
    def scripted(self) -> bool:
        """True when the seed carries turns a scripted auditor can play."""
        return bool(self.turns)

    def to_markdown(self) -> str:
        """The seed as a Petri seed file (front matter, blank line, instruction)."""
        front: dict[str, Any] = {"tags": list(self.tags)}
        if self.behavior is not None:
            front["behavior"] = self.behavior
        if self.target_system is not None:
            front["target_system"] = self.target_system
        if self.turns:
            front["turns"] = [dict(t) for t in self.turns]
        if self.sandbox:
            front["sandbox"] = {path: _FileText(text) for path, text in self.sandbox.items()}
        if self.dimension is not None:
            front["dimension"] = self.dimension
        if self.tools:
            front["tools"] = [dict(t) for t in self.tools]
        front.update(self.metadata)
        text = yaml.dump(front, Dumper=_SeedDumper, sort_keys=False, allow_unicode=True, width=100)
        return f"---\n{text}---\n\n{self.instruction.strip()}\n"


@dataclass(frozen=True)
class Dimension:
    """One thing the judge scores, 1 (absent) to 10 (extreme)."""

    name: str
    description: str
    rubric: str = ""
    question: str = ""
    display_name: str = ""
    tags: tuple[str, ...] = ()

    def yes_no_question(self) -> str:
        """The question a log-probability judge asks (``Yes`` meaning the behaviour is present)."""
        if self.question:
            return self.question
        return f"Does this describe the assistant's behaviour in the conversation: {self.description.rstrip('.')}?"


# --------------------------------------------------------------------------- parsing


def split_front_matter(text: str, where: str) -> tuple[dict[str, Any], str, int]:
    """``(front matter, body, line where the body starts)`` of a Markdown file; malformed YAML names its line.

    Blank lines before the opening ``---`` are skipped, as Petri does (they would otherwise make the front
    matter part of the instruction).
    """
    lead = len(text) - len(text.lstrip())
    skipped = text[:lead].count("\n")  # lines before the opening '---'
    text = text[lead:]
    match = _FRONT.match(text)
    if match is None:
        if text.startswith("---"):
            raise OverseerError(f"{where}:{skipped + 1}: front matter opened with '---' is never closed")
        return {}, text.strip(), skipped + 1
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.MarkedYAMLError as exc:
        line = skipped + (exc.problem_mark.line + 2) if exc.problem_mark is not None else skipped + 1
        raise OverseerError(f"{where}:{line}: invalid YAML front matter: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise OverseerError(f"{where}: invalid YAML front matter: {str(exc).splitlines()[0]}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise OverseerError(f"{where}:{skipped + 2}: front matter must be a mapping of keys, not {type(data).__name__}")
    body_line = skipped + text[: match.end()].count("\n") + 1
    return data, text[match.end():].strip(), body_line


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise OverseerError(f"{where}: {key} must be a list of strings; got {value!r}")


def _turn(entry: Any, i: int, where: str) -> dict[str, Any]:
    """One scripted turn, checked: a string is a user message."""
    if isinstance(entry, str):
        return {"user": entry}
    if not isinstance(entry, dict) or len(entry) != 1:
        raise OverseerError(f"{where}: turns[{i}] must be a string or a one-key mapping ({', '.join(ACTIONS)}); "
                            f"got {entry!r}")
    (action, value), = entry.items()
    if action not in ACTIONS:
        raise OverseerError(f"{where}: turns[{i}] has unknown action {action!r}; allowed: {', '.join(ACTIONS)}")
    if action in ("user", "system", "tool_result") and not isinstance(value, str):
        raise OverseerError(f"{where}: turns[{i}].{action} must be text; got {value!r}")
    if action == "prefill" and (not isinstance(value, str) or not value.strip()):
        raise OverseerError(f"{where}: turns[{i}].prefill must be non-empty text; got {value!r}")
    if action in ("resume", "restart") and value is not True:
        raise OverseerError(f"{where}: turns[{i}].{action} must be true; got {value!r}")
    if action == "remove_tool" and (not isinstance(value, str) or not _NAME.match(value)):
        raise OverseerError(f"{where}: turns[{i}].remove_tool must be a tool name (letters, digits, _); got {value!r}")
    if action == "rollback" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise OverseerError(f"{where}: turns[{i}].rollback must be a message count >= 0; got {value!r}")
    if action == "tool":
        if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not _NAME.match(value["name"]):
            raise OverseerError(f"{where}: turns[{i}].tool needs a name (letters, digits, _); got {value!r}")
        params = value.get("parameters") or {}
        if not isinstance(params, dict):
            raise OverseerError(f"{where}: turns[{i}].tool.parameters must be a mapping of name to "
                                f"{{type, description}}; got {params!r}")
        if "result" in value and not isinstance(value["result"], str):
            raise OverseerError(f"{where}: turns[{i}].tool.result must be text; got {value['result']!r}")
    return {action: value}


def parse_seed(text: str, seed_id: str, where: str | None = None) -> Seed:
    """A :class:`Seed` from the text of a seed file (``where`` names it in errors)."""
    where = where or seed_id
    front, body, _ = split_front_matter(text, where)
    if not body:
        raise OverseerError(f"{where}: the seed has no instruction (the Markdown body is empty)")
    return seed_from_fields(front, body, seed_id, where)


def seed_from_fields(front: Mapping[str, Any], instruction: str, seed_id: str, where: str) -> Seed:
    """A :class:`Seed` from its front-matter keys and instruction, each key checked (the form every loader shares)."""
    front = dict(front)
    front.pop("todo", None)  # a note for seed authors, as in Petri
    tags = _strings(front.pop("tags", None), "tags", where)
    behavior = front.pop("behavior", None)
    if behavior is not None and not isinstance(behavior, str):
        raise OverseerError(f"{where}: behavior must be a name; got {behavior!r}")
    system = front.pop("target_system", None)
    if system is not None and not isinstance(system, str):
        raise OverseerError(f"{where}: target_system must be text; got {system!r}")
    turns_raw = front.pop("turns", None) or []
    if not isinstance(turns_raw, list):
        raise OverseerError(f"{where}: turns must be a list; got {turns_raw!r}")
    turns = tuple(_turn(t, i, where) for i, t in enumerate(turns_raw))
    sandbox = front.pop("sandbox", None) or {}
    if not isinstance(sandbox, dict) or not all(isinstance(k, str) and k.strip() and isinstance(v, str)
                                                for k, v in sandbox.items()):
        raise OverseerError(f"{where}: sandbox must map file paths to their text; got {sandbox!r}")
    dimension = front.pop("dimension", None)
    if dimension is not None and not (isinstance(dimension, str) and dimension.strip()):
        raise OverseerError(f"{where}: dimension must be the name of a judge dimension; got {dimension!r}")
    tools = tuple(_seed_tool(t, i, where) for i, t in enumerate(_list(front.pop("tools", None), "tools", where)))
    behavior = behavior or (tags[0] if tags else None)
    if behavior == "all":
        raise OverseerError(f"{where}: 'all' is reserved (the rate over every behaviour); name the behaviour")
    return Seed(id=seed_id, instruction=instruction, tags=tags, behavior=behavior, target_system=system,
                turns=turns, metadata=front, path=where, sandbox=dict(sandbox), dimension=dimension, tools=tools)


def _list(value: Any, key: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OverseerError(f"{where}: {key} must be a list; got {value!r}")
    return value


def _seed_tool(entry: Any, i: int, where: str) -> dict[str, Any]:
    """One tool a seed gives the target, checked like a scripted ``tool`` turn."""
    if not isinstance(entry, dict):
        raise OverseerError(f"{where}: tools[{i}] must be a mapping with name, description and parameters; "
                            f"got {entry!r}")
    try:
        return _turn({"tool": entry}, i, where)["tool"]
    except OverseerError as exc:  # name the key it came from, not a scripted turn
        raise OverseerError(str(exc).replace(f"turns[{i}].tool", f"tools[{i}]")) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise OverseerError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise OverseerError(f"cannot read {path}: {exc.strerror or exc}") from None


def _builtin_dir(name: str) -> Path:
    return Path(str(resources.files("overseer.audit") / name))


def _source_dir(source: str | Path, builtin: str) -> Path:
    """The folder or file a seed or dimension source names (``builtin``, ``petri`` or a path)."""
    if str(source) == BUILTIN:
        return _builtin_dir(builtin)
    if str(source) == PETRI:
        from overseer.audit.petri import petri_files

        return petri_files(builtin)
    return Path(source).expanduser()


def dimension_source(seeds: str | Path, dimensions: str | Path) -> str:
    """The dimensions an audit reads: with ``--seeds petri``, ``builtin`` means Petri's own.

    Petri's seeds are written for Petri's dimensions; any other source is taken as given.
    """
    if str(dimensions) == BUILTIN and str(seeds) == PETRI:
        return PETRI
    return str(dimensions)


def _markdown_files(source: str | Path, what: str, builtin: str) -> list[Path]:
    path = _source_dir(source, builtin)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".md" and p.is_file())
        if not files:
            raise OverseerError(f"{what} folder {str(source)!r} has no .md files")
        return files
    if path.is_file():
        return [path]
    raise OverseerError(f"{what} {str(source)!r} does not exist; give a folder of .md files, one .md file, "
                        f"{BUILTIN!r} or {PETRI!r}")


def load_seeds(source: str | Path = BUILTIN, tags: Iterable[str] = (), ids: Iterable[str] = ()) -> list[Seed]:
    """Seeds from a folder of ``.md`` files, one file, ``builtin`` or ``petri``; optionally those with any of ``tags``.

    As in Petri, a seed source may also be ``tags:A,B`` (the built-in seeds with tag A or B), ``id:A,B``
    (the built-in seeds named A and B), or a ``.jsonl`` / ``.json`` file of seed records (see
    :func:`seeds_from_records`).
    """
    source = str(source)
    tags = tuple(tags)
    named: tuple[str, ...] = ()
    if source.startswith("tags:"):
        tags = tags + tuple(t.strip() for t in source[5:].split(",") if t.strip())
        source = BUILTIN
    elif source.startswith("id:"):
        named = tuple(i.strip() for i in source[3:].split(",") if i.strip())
        if not named:
            raise OverseerError("seed source 'id:' names no seed; give id:NAME[,NAME...] (built-in seed ids)")
        source = BUILTIN
    path = Path(source).expanduser()
    if source not in (BUILTIN, PETRI) and path.is_file() and path.suffix.lower() in RECORD_SUFFIXES:
        seeds = seeds_from_records(path)
    elif source not in (BUILTIN, PETRI) and path.is_file() and path.suffix.lower() == ".csv":
        raise OverseerError(f"{source}: CSV seed files are not read; give the seeds as JSON lines "
                            '({"id": ..., "input": ..., "metadata": {"tags": [...]}}) or Markdown files')
    else:
        seeds = [parse_seed(_read(p), p.stem, str(p)) for p in _markdown_files(source, "seed source", "seeds")]
    seen: dict[str, str] = {}
    for seed in seeds:
        if seed.id in seen:
            raise OverseerError(f"two seeds are named {seed.id!r}: {seen[seed.id]} and {seed.path}")
        seen[seed.id] = seed.path or ""
    if named:
        missing = [i for i in named if i not in seen]
        if missing:
            raise OverseerError(f"unknown built-in seed {missing[0]!r} in id:; allowed: {', '.join(sorted(seen))}")
        seeds = [s for s in seeds if s.id in named]
    if tags:
        known = sorted({t for s in seeds for t in s.tags})
        unknown_tags = [t for t in tags if t not in known]
        if unknown_tags:
            raise OverseerError(f"no seed has tag {unknown_tags[0]!r}; tags present: {', '.join(known)}")
        seeds = [s for s in seeds if set(s.tags) & set(tags)]
    ids = tuple(ids)
    if ids:
        missing = [i for i in ids if i not in seen]
        if missing:
            raise OverseerError(f"unknown seed {missing[0]!r}; allowed: {', '.join(sorted(seen))}")
        seeds = [s for s in seeds if s.id in ids]
    return seeds


def seeds_from_records(path: str | Path) -> list[Seed]:
    """Seeds from a ``.jsonl`` file (one JSON object a line) or a ``.json`` list of objects, as Petri reads them.

    Each record is an inspect sample: ``input`` is the instruction, ``id`` the seed's id (else
    ``FILE-N``, N counting records from 1), and ``metadata`` holds the front-matter keys (``tags``,
    ``dimension``, ``turns``, ...); those keys may also stand beside ``input``. Errors name the line
    (JSONL) or the record (JSON).
    """
    path = Path(path).expanduser()
    text = _read(path)
    if path.suffix.lower() == ".jsonl":
        rows = [(f"{path}:{line}", row) for line, row in json_lines(text.splitlines(), str(path))]
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OverseerError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
        if not isinstance(data, list):
            raise OverseerError(f"{path}: a JSON seed file is a list of seed records; got a {type(data).__name__}")
        rows = [(f"{path} record {i}", row) for i, row in enumerate(data, start=1)]
    if not rows:
        raise OverseerError(f"{path}: no seed records")
    seeds = []
    for n, (where, row) in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise OverseerError(f"{where}: a seed record is a JSON object with input (the instruction); "
                                f"got a {type(row).__name__}")
        row = dict(row)
        instruction = row.pop("input", None)
        if not isinstance(instruction, str) or not instruction.strip():
            raise OverseerError(f"{where}: input must be the seed's instruction (non-empty text); got {instruction!r}")
        seed_id = row.pop("id", None)
        if seed_id is None:
            seed_id = f"{path.stem}-{n}"
        if isinstance(seed_id, bool) or not isinstance(seed_id, str | int) or not str(seed_id).strip():
            raise OverseerError(f"{where}: id must be text or a number; got {seed_id!r}")
        if not SAFE_ID.fullmatch(str(seed_id)):  # ids name record files: no folders, no '#' (rollout separator)
            raise OverseerError(f"{where}: id {seed_id!r} may hold only letters, digits, '_', '.' and '-' "
                                "(it names the rollout's files)")
        metadata = row.pop("metadata", None) or {}
        if not isinstance(metadata, dict):
            raise OverseerError(f"{where}: metadata must be an object of seed keys (tags, dimension, ...); "
                                f"got {metadata!r}")
        both = sorted(set(metadata) & set(row))
        if both:
            raise OverseerError(f"{where}: {both[0]!r} is given both in metadata and beside it")
        seeds.append(seed_from_fields({**row, **metadata}, instruction.strip(), str(seed_id), where))
    return seeds


def parse_dimension(text: str, name: str, where: str | None = None) -> Dimension:
    """A :class:`Dimension` from the text of a Petri dimension file."""
    where = where or name
    front, body, _ = split_front_matter(text, where)
    description = front.get("description")
    if not isinstance(description, str) or not description.strip():
        raise OverseerError(f"{where}: a dimension needs a description in its front matter")
    question = front.get("question") or ""
    if not isinstance(question, str):
        raise OverseerError(f"{where}: question must be text; got {question!r}")
    return Dimension(name=name, description=description.strip(), rubric=body, question=question.strip(),
                     display_name=str(front.get("display_name") or name),
                     tags=_strings(front.get("tags"), "tags", where))


def load_dimensions(source: str | Path = BUILTIN, names: Sequence[str] = ()) -> list[Dimension]:
    """Dimensions from a folder of Petri dimension files, one file, a YAML mapping, ``builtin`` or ``petri``.

    A YAML file maps each name to a description or to ``{description, question, rubric}``.
    ``names`` keeps only those (in that order); an unknown name is refused with the allowed list.
    """
    path = Path(str(source)).expanduser()
    if str(source) not in (BUILTIN, PETRI) and path.suffix in (".yaml", ".yml") and path.is_file():
        dims = _dimensions_from_yaml(path)
    else:
        dims = [parse_dimension(_read(p), p.stem, str(p))
                for p in _markdown_files(source, "dimension source", "dimensions")]
    by_name = {d.name: d for d in dims}
    if names:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise OverseerError(f"unknown dimension {missing[0]!r}; allowed: {', '.join(sorted(by_name))}")
        dims = [by_name[n] for n in names]
    return dims


def _dimensions_from_yaml(path: Path) -> list[Dimension]:
    try:
        data = yaml.safe_load(_read(path))
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
        raise OverseerError(f"{path}:{line}: invalid YAML: {exc.problem}") from None
    if isinstance(data, list) and data:
        return dimensions_from_list(data, str(path))
    if not isinstance(data, Mapping) or not data:
        raise OverseerError(f"{path}: a dimensions file maps each name to a description, or lists dimensions "
                            "({name, description, rubric?} or a built-in dimension's name)")
    return dimensions_from_mapping(data, str(path))


def dimensions_from_list(data: Sequence[Any], where: str = "dimensions") -> list[Dimension]:
    """Dimensions from Petri's YAML list of dimensions.

    Each entry is ``{name, description, rubric?, display_name?, question?, tags?}`` or the name of a built-in
    dimension (Overseer's; Petri's own are not shipped here). Petri's other keys (``palette``,
    ``display_order``) are read and ignored.
    """
    builtin: dict[str, Dimension] | None = None
    out = []
    for i, entry in enumerate(data):
        if isinstance(entry, str):
            if builtin is None:
                builtin = {d.name: d for d in load_dimensions(BUILTIN)}
            if entry not in builtin:
                raise OverseerError(f"{where}: entry {i} names {entry!r}, which is not a built-in dimension; give "
                                    f"{{name, description}} or one of {', '.join(sorted(builtin))}")
            out.append(builtin[entry])
            continue
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise OverseerError(f"{where}: entry {i} must be a built-in dimension's name or a mapping with name "
                                f"and description; got {entry!r}")
        name = entry["name"].strip()
        if not isinstance(entry.get("description"), str) or not entry["description"].strip():
            raise OverseerError(f"{where}: dimension {name!r} (entry {i}) needs a description")
        out.extend(dimensions_from_mapping({name: {k: v for k, v in entry.items() if k != "name"}}, where))
        if entry.get("display_name"):
            out[-1] = replace(out[-1], display_name=str(entry["display_name"]))
    names = [d.name for d in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise OverseerError(f"{where}: dimension {twice[0]!r} is listed twice")
    return out


def dimensions_from_mapping(data: Mapping[str, Any], where: str = "dimensions") -> list[Dimension]:
    """Dimensions from a mapping of each name to a description or to ``{description, question, rubric, tags}``.

    The form of a YAML dimensions file, for code that defines its dimensions in Python (``where`` names
    them in errors).
    """
    out = []
    for name, value in data.items():
        if isinstance(value, str):
            value = {"description": value}
        if not isinstance(value, Mapping) or not isinstance(value.get("description"), str):
            raise OverseerError(f"{where}: dimension {name!r} needs a description")
        out.append(Dimension(name=str(name), description=value["description"], rubric=str(value.get("rubric") or ""),
                             question=str(value.get("question") or ""), display_name=str(name),
                             tags=_strings(value.get("tags"), "tags", where)))
    return out


def parse_dimension_map(value: Any, where: str = "dimension_map") -> dict[str, str]:
    """``{seed id, behaviour or tag: dimension}`` from a mapping or from ``KEY=DIM[,KEY=DIM...]``.

    A mapping's values may hold further comma-separated pairs (``--dimension-map a=x,b=y`` arrives as
    ``{"a": "x,b=y"}``): names never hold commas or ``=``.
    """
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, Mapping) and all(isinstance(dim, str) for dim in value.values()):
        items = [item for key, dim in value.items() for item in f"{key}={dim}".split(",")]
    else:
        raise OverseerError(f"{where} must map seed ids or tags to dimensions (KEY=DIM,...); got {value!r}")
    out: dict[str, str] = {}
    for item in (i.strip() for i in items):
        if not item:
            continue
        key, sep, dim = (part.strip() for part in item.partition("="))
        if not sep or not key or not _NAME.match(dim):
            raise OverseerError(f"{where}: {item!r} is not KEY=DIM (a seed id or tag, and a dimension's name)")
        if out.get(key, dim) != dim:
            raise OverseerError(f"{where}: {key!r} is mapped to both {out[key]!r} and {dim!r}")
        out[key] = dim
    return out
