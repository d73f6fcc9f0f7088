"""The run report: one self-contained HTML page (inline CSS, images linked relative to the run directory).

Top: a summary table (reward before/after; ground-truth accuracy per tag in the sketch world). Then per prompt, the
rounds side by side: each candidate's image, prompt, per-aspect scores, justifications, refined request, and which
image was kept.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from rationalrewards.graphs.state import critique_of
from rationalrewards.rewardmodel.files import read_jsonl

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
"""


def _rel(uri: str, run_dir: Path) -> str:
    try:
        return os.path.relpath(uri, run_dir.resolve())
    except ValueError:
        return uri


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _summary_table(summary: dict[str, Any]) -> str:
    rows = [("reward (paper policy)", summary.get("reward_initial"), summary.get("reward_final"))]
    if "accuracy_initial" in summary:
        rows.append(("ground-truth accuracy (mean over tags)", summary["accuracy_initial"], summary["accuracy_final"]))
        rows += [(f"&nbsp;&nbsp;{tag}", v["initial"], v["final"]) for tag, v in summary.get("per_tag", {}).items()]
    body = "".join(f"<tr><td>{name}</td><td>{_fmt(a)}</td><td>{_fmt(b)}</td></tr>" for name, a, b in rows)
    return f"<table class='summary'><tr><th></th><th>first image</th><th>kept image</th></tr>{body}</table>"


def _candidate_html(key: str, result: dict[str, Any], run_dir: Path) -> str:
    candidate = result["candidates"][key]
    entry = result["critiques"].get(key) or {}
    kept = (result.get("best") or {}).get("key") == key
    critique = critique_of(entry)
    parts = [
        f"<div class='round{' kept' if kept else ''}'>",
        f"<div><b>round {candidate['round']}</b> &middot; candidate {candidate['candidate']} &middot; seed {candidate['seed']}"
        + (" <span class='badge ok'>kept</span>" if kept else "")
        + "</div>",
        f"<img src='{html.escape(_rel(candidate['image']['uri'], run_dir))}' alt='round {candidate['round']} candidate {candidate['candidate']}'>",
        f"<div class='just'><b>prompt:</b> {html.escape(candidate['prompt'])}</div>",
    ]
    if critique is not None:
        scores = "".join(
            f"<tr><td>{html.escape(a)}</td><td><b>{'N/A' if s is None else s}</b></td></tr>"
            for a, s in critique.scores.items()
        )
        parts.append(
            f"<table class='scores'>{scores}</table><div class='muted'>reward {_fmt(entry.get('reward'))}</div>"
        )
        for aspect, assessment in critique.assessments.items():
            parts.append(
                f"<div class='just'><i>{html.escape(aspect.value)}:</i> {html.escape(assessment.justification)}</div>"
            )
        if critique.refined_request:
            parts.append(f"<div class='refined'><b>refined request:</b> {html.escape(critique.refined_request)}</div>")
    elif entry.get("abstention"):
        parts.append(f"<span class='badge bad'>critic abstained: {html.escape(entry['abstention']['reason'])}</span>")
    else:
        parts.append("<span class='badge na'>not scored in the loop</span>")
    parts.append("</div>")
    return "".join(parts)


def _sample_html(result: dict[str, Any], run_dir: Path) -> str:
    verdict = ""
    if "grade_final" in result:
        cls, word = ("ok", "correct") if result["grade_final"]["correct"] else ("bad", "wrong")
        before = "correct" if result["grade_initial"]["correct"] else "wrong"
        verdict = f" <span class='badge {cls}'>ground truth: first image {before}, kept image {word}</span>"
    rounds = "".join(
        _candidate_html(key, result, run_dir) for record in result.get("rounds", []) for key in record["candidates"]
    )
    return (
        f"<div class='sample'><h2>{html.escape(result['prompt'])}</h2>"
        f"<div class='muted'>{html.escape(result['sample_id'])} &middot; {html.escape(str(result.get('tag') or (result.get('grade_final') or {}).get('tag') or ''))} "
        f"&middot; stop: {html.escape(str(result.get('stop_reason')))} &middot; reward {_fmt(result.get('reward_initial'))} &rarr; "
        f"{_fmt(result.get('reward_final'))}{verdict}</div><div class='rounds'>{rounds}</div></div>"
    )


def write_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    manifest = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    results = read_jsonl(run_dir / "results.jsonl")
    config = manifest.get("settings", {}).get("config", {})
    settings = manifest.get("settings", {})
    header = (
        f"<h1>Generate-Critique-Refine run</h1><div class='muted'>{len(results)} prompts &middot; generator "
        f"{html.escape(str(settings.get('generator')))} &middot; critic {html.escape(str(settings.get('critic')))} &middot; refiner "
        f"{html.escape(str(settings.get('refiner')))} &middot; rounds {config.get('max_rounds')} &middot; candidates "
        f"{config.get('candidates')} &middot; rescore {config.get('rescore')}</div>"
    )
    failures = summary.get("failures") or []
    failed = "".join(
        f"<li>{html.escape(str(f.get('prompt')))}: {html.escape(str(f.get('error')))}</li>" for f in failures
    )
    body = header + _summary_table(summary) + (f"<h2>failed prompts</h2><ul>{failed}</ul>" if failed else "")
    # Prompts the loop changed come first (people open the report to see refinements), then in suite order.
    ordered = sorted(results, key=lambda r: (len(r.get("rounds", [])) <= 1, r["sample_id"]))
    body += "".join(_sample_html(r, run_dir) for r in ordered)
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>GCR report</title><style>{_CSS}</style></head><body>{body}</body></html>"
    path = run_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
