"""File sandboxes: seed files whose tools the audit answers itself, deterministically, and whose final state is kept."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from inspect_ai.model import GenerateConfig, get_model

from overseer.audit.auditor import TargetConversation
from overseer.audit.sandbox import TOOL_SPECS, FileSandbox
from overseer.audit.scenarios import parse_seed
from overseer.errors import OverseerError


def test_the_sandbox_lists_reads_and_writes_in_memory() -> None:
    box = FileSandbox({"./notes/todo.md": "- [ ] task\n", "a.txt": "alpha"})
    assert box.answer("list_files", {}) == "a.txt (5 characters)\nnotes/todo.md (11 characters)"
    assert box.answer("read_file", {"path": "/notes//todo.md"}) == "- [ ] task\n"
    assert box.answer("read_file", {"path": "missing.py"}).startswith("Error: no file 'missing.py'; files: a.txt")
    assert box.answer("write_file", {"path": "a.txt"}).startswith("Error: write_file needs content")
    assert box.answer("write_file", {"path": "a.txt", "content": "beta"}) == "Wrote 4 characters to a.txt."
    assert box.answer("write_file", {"path": "new.py", "content": "x = 1\n"}) == "Wrote 6 characters to new.py."
    assert box.answer("send_email", {"to": "x"}) is None  # not a sandbox tool: left to the auditor
    state = box.state()
    assert state["changed"] == ["a.txt", "new.py"] and state["files"]["a.txt"] == "beta"
    assert box.initial["a.txt"] == "alpha"
    assert [op["tool"] for op in state["operations"]] == ["list_files", "read_file", "read_file", "write_file",
                                                          "write_file", "write_file"]


def test_a_seed_carries_its_sandbox_through_its_markdown() -> None:
    text = '---\ntags: [x]\nturns: ["Check notes.md"]\nsandbox:\n  notes.md: "line one\\nline two\\n"\n---\n\nGo.\n'
    seed = parse_seed(text, "notes")
    assert seed.sandbox == {"notes.md": "line one\nline two\n"} and "sandbox" not in seed.metadata
    assert parse_seed(seed.to_markdown(), "notes") == seed
    odd = {"no_newline.txt": "x", "spaces.txt": "trailing  \nspaces ", "indented.py": "  a\nb\n", "empty": "",
           "yaml.md": "a: b\n- c\n# not a comment\n", "crlf.txt": "x\r\ny\n", "blank_end.txt": "x\n\n\n"}
    odd_seed = dataclasses.replace(seed, sandbox=odd)
    assert parse_seed(odd_seed.to_markdown(), "notes").sandbox == odd  # files come back byte for byte
    assert "  notes.md: |\n    line one\n" in seed.to_markdown()  # shown as a block, as the file reads
    with pytest.raises(OverseerError, match="sandbox must map file paths to their text"):
        parse_seed("---\nsandbox: [a.txt]\n---\n\nGo.\n", "bad")


def test_the_answerer_replies_to_its_own_tools_and_leaves_the_rest_to_the_auditor() -> None:
    read = json.dumps({"name": "read_file", "arguments": {"path": "a.txt"}})
    ask = json.dumps({"name": "ask_human", "arguments": {"question": "why?"}})
    target = get_model("overseer/mock", outputs=[f"<tool_call>{read}</tool_call>", f"<tool_call>{ask}</tool_call>",
                                                 "The file says alpha."], memoize=False)
    box = FileSandbox({"a.txt": "alpha"})
    conversation = TargetConversation(target, GenerateConfig(max_tokens=32), native_tools=False, max_turns=5,
                                      tool_answerer=box.answer)
    for spec in TOOL_SPECS:
        conversation.create_tool(spec["name"], spec["description"], spec["parameters"])
    conversation.create_tool("ask_human", "Ask a person.", {"question": {"type": "string", "description": "q"}})

    shown = asyncio.run(conversation.send_message("What is in a.txt?"))
    assert "[tool result call_0: alpha]" in shown and conversation.turns == 2
    pending = conversation.pending_calls()
    assert [c.function for c in pending] == ["ask_human"]  # the auditor answers this one
    assert "- read_file(path: string)" in conversation.transcript()[0].text  # told of its tools in text
    final = asyncio.run(conversation.send_tool_call_result(pending[0].id, "Because."))
    assert final == "The file says alpha." and conversation.turns == 3
    assert [m.role for m in conversation.messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert [e["action"] for e in conversation.events].count("tool_answered") == 1
