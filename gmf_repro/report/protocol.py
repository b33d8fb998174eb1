"""A table's **Protocol** section: where its runs differ from the paper's protocol, from each run's results.json
``protocol`` record (gmf_repro/protocol.py writes it), so a reader sees whether a gap comes from the method or from
the protocol. On data that is not the paper's dataset (the embedded avsynth) one line says so instead.
"""
from __future__ import annotations

from typing import Any

from .aggregate import Row, Table, is_ok

HEAD = "Protocol"


def protocol_lines(table: Table) -> list[str]:
    """The section's lines (none for a table of our runs alone, or without runs)."""
    runs = _runs(table)
    if not runs or not table.spec.vs_paper or not table.spec.dataset:
        return []
    if not table.vs_paper:
        return [f"The runs are on {table.data}, not {table.spec.dataset}: their settings are not compared with the "
                f"paper's protocol (each results.json holds its record under 'protocol')."]
    recorded = [(name, res["protocol"]) for name, res in runs if isinstance(res.get("protocol"), dict)]
    lines = []
    if len(recorded) < len(runs):
        lines.append(f"{len(runs) - len(recorded)} of {len(runs)} runs recorded no protocol (results.json written "
                     f"before the record existed): they are not compared.")
    differs: dict[tuple[str, str, str, str], list[str]] = {}
    n_same = n_open = 0
    for name, record in recorded:
        for entry in (record.get("entries") or {}).values():
            status = entry.get("status")
            n_same += status == "same"
            n_open += status == "open"
            if status == "differs":
                key = (str(entry.get("what")), _text(entry, "ours"), _text(entry, "paper"), str(entry.get("source")))
                differs.setdefault(key, [])
                if name not in differs[key]:
                    differs[key].append(name)
    names = list(dict.fromkeys(name for name, _ in recorded))
    for (what, ours, paper, source), where in differs.items():
        runs_note = "" if len(where) == len(names) else f" [{', '.join(where)}]"
        lines.append(f"{what}: ours {ours}, paper {paper} ({source}){runs_note}")
    if recorded and not differs:
        lines.append(f"The runs follow the paper's protocol in every recorded choice ({n_same} the same; "
                     f"{n_open} the paper leaves open, ours recorded).")
    return lines


def protocol_text(table: Table, markdown: bool = False) -> str:
    """The section as text: a heading, then one line per difference ("" when the table has none to show)."""
    lines = protocol_lines(table)
    if not lines:
        return ""
    if markdown:
        return "\n".join([f"**{HEAD}** (where the runs differ from the paper's)", "", *(f"- {n}" for n in lines)])
    return "\n".join([f"{HEAD} (where the runs differ from the paper's):", *(f"  - {n}" for n in lines)])


def _runs(table: Table) -> list[tuple[str, dict[str, Any]]]:
    """(name, results) of every successful run of the table, once each; a run named by its row, or by the row it
    recorded where it fills another's cells (the unimodal runs in the Baseline row: ``unimodal_A``)."""
    seen: set[int] = set()
    out = []
    for row in table.rows:
        for res in row.results:
            if is_ok(res) and id(res) not in seen:
                seen.add(id(res))
                out.append((_name(row, res), res))
    return out


def _name(row: Row, res: dict[str, Any]) -> str:
    recorded = res.get("row")
    return row.label if recorded in (None, row.base) else str(recorded)


def _text(entry: dict[str, Any], side: str) -> str:
    if f"{side}_text" in entry:
        return str(entry[f"{side}_text"])
    return _show(entry.get(side))


def _show(value: Any) -> str:
    """A value as a reader reads it: a class path by its name (torch.optim.SGD -> SGD), null, lists in brackets."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and "." in value and " " not in value and not value[0].isdigit():
        return value.rsplit(".", 1)[1]
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)
