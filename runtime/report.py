"""The run report: self-contained HTML pages (inline CSS, images linked relative to the run directory).

    report.html            the index (`runtime/report_index.py`): settings, before/after figures, pictures, and every
                           prompt in one sortable, filterable table with thumbnails (rows in report/rows-NNNN.js)
    report/page-0001.html  up to `per_page` prompts each, in sample-id order: every round side by side, each
                           candidate's image, prompt, per-aspect scores, justifications, refined request, which was kept

Escaped by construction: every page is a Jinja2 template with autoescape on, so no value from a suite, a critic or a
server (tags, prompts, justifications, error texts) can inject markup. Pages have a bounded size whatever the run's:
results are streamed from `results.jsonl` (one pass for the pages, an index of sample ids and byte offsets for the
order), never loaded whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape

from rationalrewards.graphs.state import critique_of
from rationalrewards.plumbing.files import atomic_write_text
from rationalrewards.runtime.report_index import IndexData, RowFiles, render_index, table_row

PER_PAGE = 50
PAGES_DIR = "report"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:0 0 8px} .muted{color:#666;font-size:13px}
table.summary{border-collapse:collapse;margin:12px 0 24px;background:#fff}
table.summary td,table.summary th{border:1px solid #ddd;padding:4px 10px;font-size:13px;text-align:right}
table.summary th:first-child,table.summary td:first-child{text-align:left}
.sample{background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:12px 14px;margin:0 0 16px}
.rounds{display:flex;gap:12px;overflow-x:auto}
.round{min-width:250px;max-width:270px;border:1px solid #eee;border-radius:6px;padding:8px;font-size:12px}
.round img{width:256px;height:256px;object-fit:contain;border:1px solid #ccc;background:#eee;display:block}
.kept{border:2px solid #2e9d4f;background:#f3fbf5} .badge{display:inline-block;padding:1px 6px;border-radius:8px;font-size:11px}
.ok{background:#d8f3df;color:#17632e} .bad{background:#fde2e1;color:#9b1c1c} .na{background:#eee;color:#555}
.scores td{padding:1px 6px 1px 0} .just{color:#444;margin:4px 0} .refined{color:#1a4fa0;margin-top:4px}
nav a{margin-right:8px}
"""

_LAYOUT = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title><style>{{ css }}</style></head>
<body>{% block body %}{% endblock %}</body></html>"""

_PAGE = """{% extends "layout" %}{% block body %}
<h1>Generate-Critique-Refine run, prompts {{ first }} &ndash; {{ last }}</h1>
<nav><a href="../report.html">index</a>{% if previous %}<a href="{{ previous }}">previous</a>{% endif %}
{% if next %}<a href="{{ next }}">next</a>{% endif %}</nav>
{% for sample in samples %}<div class="sample" id="{{ sample.sample_id }}"><h2>{{ sample.prompt }}</h2>
<div class="muted">{{ sample.sample_id }} &middot; {{ sample.tag }} &middot; stop: {{ sample.stop_reason }} &middot; reward
{{ sample.reward_initial }} &rarr; {{ sample.reward_final }}
{% if sample.verdict %} <span class="badge {{ 'ok' if sample.verdict.correct else 'bad' }}">ground truth: first image
{{ sample.verdict.before }}, kept image {{ sample.verdict.after }}</span>{% endif %}</div>
<div class="rounds">{% for c in sample.candidates %}<div class="round{{ ' kept' if c.kept }}">
<div><b>round {{ c.round }}</b> &middot; candidate {{ c.candidate }} &middot; seed {{ c.seed }}{% if c.kept %} <span class="badge ok">kept</span>{% endif %}</div>
<img src="{{ c.src }}" alt="round {{ c.round }} candidate {{ c.candidate }}">
<div class="just"><b>prompt:</b> {{ c.prompt }}</div>
{% if c.scores %}<table class="scores">{% for aspect, score in c.scores %}<tr><td>{{ aspect }}</td><td><b>{{ score }}</b></td></tr>{% endfor %}</table>
<div class="muted">reward {{ c.reward }}</div>
{% for aspect, text in c.justifications %}<div class="just"><i>{{ aspect }}:</i> {{ text }}</div>{% endfor %}
{% if c.refined %}<div class="refined"><b>refined request:</b> {{ c.refined }}</div>{% endif %}
{% elif c.abstained %}<span class="badge bad">critic abstained: {{ c.abstained }}</span>
{% else %}<span class="badge na">not scored in the loop</span>{% endif %}</div>{% endfor %}</div></div>{% endfor %}
{% endblock %}"""

_ENV = Environment(
    loader=DictLoader({"layout": _LAYOUT, "page": _PAGE}),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _rel(uri: str, start: Path) -> str:
    try:
        return Path(os.path.relpath(uri, start.resolve())).as_posix()
    except ValueError:
        return uri


def _candidates(result: dict[str, Any], start: Path) -> list[dict[str, Any]]:
    best_key = (result.get("best") or {}).get("key")
    shown = []
    for record in result.get("rounds", []):
        for key in record.get("candidates", []):
            candidate = result["candidates"][key]
            entry = result.get("critiques", {}).get(key) or {}
            critique = critique_of(entry)
            shown.append({
                "round": candidate["round"], "candidate": candidate["candidate"], "seed": candidate["seed"],
                "prompt": candidate["prompt"], "kept": key == best_key, "src": _rel(candidate["image"]["uri"], start),
                "reward": _fmt(entry.get("reward")),
                "scores": [(a, "N/A" if s is None else s) for a, s in critique.scores.items()] if critique else [],
                "justifications": [(a.value, x.justification) for a, x in critique.assessments.items()] if critique else [],
                "refined": critique.refined_request if critique else "",
                "abstained": (entry.get("abstention") or {}).get("reason"),
            })  # fmt: skip
    return shown


def _sample(result: dict[str, Any], start: Path) -> dict[str, object]:
    verdict = None
    if "grade_final" in result:
        word = {True: "correct", False: "wrong"}
        verdict = {
            "correct": result["grade_final"]["correct"],
            "before": word[result["grade_initial"]["correct"]],
            "after": word[result["grade_final"]["correct"]],
        }
    return {
        "prompt": result.get("prompt", ""),
        "sample_id": result.get("sample_id", ""),
        "tag": result.get("tag") or (result.get("grade_final") or {}).get("tag") or "",
        "stop_reason": result.get("stop_reason"),
        "reward_initial": _fmt(result.get("reward_initial")),
        "reward_final": _fmt(result.get("reward_final")),
        "verdict": verdict,
        "candidates": _candidates(result, start),
    }


def _ordered_offsets(path: Path) -> list[tuple[str, int]]:
    """(sample id, byte offset) of the first complete line per sample, in sample-id order: the pages' order without
    holding the results in memory."""
    first: dict[str, int] = {}
    offset = 0
    with path.open("rb") as f:
        for raw in f:
            try:
                sample_id = str(json.loads(raw)["sample_id"])
            except (ValueError, KeyError, TypeError):
                sample_id = None
            if sample_id is not None:
                first.setdefault(sample_id, offset)
            offset += len(raw)
    return sorted(first.items())


def _results_at(path: Path, offsets: list[tuple[str, int]]) -> Iterator[dict[str, object]]:
    with path.open("rb") as f:
        for _, offset in offsets:
            f.seek(offset)
            yield json.loads(f.readline())


def _summary_rows(summary: dict[str, Any]) -> list[dict[str, object]]:
    rows = [
        {
            "name": "reward (paper policy)",
            "before": _fmt(summary.get("reward_initial")),
            "after": _fmt(summary.get("reward_final")),
            "indent": False,
        }
    ]
    if "accuracy_initial" in summary:
        rows.append(
            {
                "name": "ground-truth accuracy (mean over tags)",
                "before": _fmt(summary["accuracy_initial"]),
                "after": _fmt(summary["accuracy_final"]),
                "indent": False,
            }
        )
        rows += [
            {"name": tag, "before": _fmt(v["initial"]), "after": _fmt(v["final"]), "indent": True}
            for tag, v in summary.get("per_tag", {}).items()
        ]
    return rows


def write_report(run_dir: str | Path, *, per_page: int = PER_PAGE, lives_at: str | Path | None = None) -> Path:
    """Write `report.html` and its pages from the run's files; returns the index page's path. `lives_at`: where the
    directory will be read from when it is being written elsewhere first (a merge builds its output beside it), so
    image links are relative to that place."""
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    run_dir = Path(run_dir)
    link_root = Path(lives_at) if lives_at is not None else run_dir
    manifest = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    results = run_dir / "results.jsonl"
    offsets = _ordered_offsets(results) if results.exists() else []
    pages_dir = run_dir / PAGES_DIR
    pages_dir.mkdir(exist_ok=True)
    chunks = [offsets[k : k + per_page] for k in range(0, len(offsets), per_page)]
    names = [f"page-{n:04d}.html" for n in range(1, len(chunks) + 1)]
    for stale in set(p.name for p in pages_dir.glob("page-*.html")) - set(names):
        (pages_dir / stale).unlink()
    data, row_files = IndexData(), RowFiles(pages_dir)
    for n, chunk in enumerate(chunks):
        samples = []
        for result in _results_at(results, chunk):
            samples.append(_sample(result, link_root / PAGES_DIR))
            data.add(result)
            row_files.add(table_row(result, f"{PAGES_DIR}/{names[n]}", lambda uri: _rel(uri, link_root)))
        page = _ENV.get_template("page").render(
            title=f"GCR report, page {n + 1}",
            css=_CSS,
            samples=samples,
            first=chunk[0][0],
            last=chunk[-1][0],
            previous=names[n - 1] if n else None,
            next=names[n + 1] if n + 1 < len(names) else None,
        )
        atomic_write_text(pages_dir / names[n], page)
    row_files.flush()
    index = render_index(
        _ENV,
        _CSS,
        data=data,
        directory=pages_dir,
        pages_dir_name=PAGES_DIR,
        row_files=row_files.names,
        settings=manifest.get("settings", {}),
        summary_rows=_summary_rows(summary),
        summary=summary,
        pages=[{"href": f"{PAGES_DIR}/{name}"} for name in names],
        finished=len(offsets),
    )
    return atomic_write_text(run_dir / "report.html", index)
