"""`report.html` of an evaluation: the headline figures under both accountings, then pictures (accuracy by category
with 95% intervals, summed scores of the preferred and the rejected image, the confusion of labels and predictions
with ties and abstentions as their own rows), then the rows that could not be read. One self-contained page
(plots inline as PNG), escaped by construction (Jinja2 autoescape)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from rationalrewards.plumbing.files import atomic_write_text
from rationalrewards.runtime.eval_runner import EvalSummary

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>eval: {{ r.bench }}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#1d1d1f;background:#fafafa;max-width:1100px}
table{border-collapse:collapse;margin:10px 0 22px;background:#fff}td,th{border:1px solid #ddd;padding:4px 10px;
font-size:13px;text-align:right}td:first-child,th:first-child{text-align:left}.muted{color:#666;font-size:13px}
img{max-width:100%;background:#fff;border:1px solid #e3e3e3;margin:6px 0 18px}</style></head><body>
<h1>Evaluation: {{ r.critic }} on {{ r.bench }}</h1>
<p class="muted">{{ r.pairs_file }} · mode {{ r.mode }} · tolerance {{ r.tolerance }} · samples {{ r.samples }} ·
prompts {{ r.prompts }} · headline: {{ r.rule }}</p>
<table><tr><th>figure</th><th>value</th></tr>
{% for name, value in headline %}<tr><td>{{ name }}</td><td>{{ value }}</td></tr>{% endfor %}</table>
{% if categories %}<h2>By category</h2><table><tr><th>category</th><th>pairs</th><th>accuracy (ours)</th>
<th>decisive accuracy</th><th>95% interval</th><th>release accuracy</th><th>abstentions</th><th>predicted ties</th></tr>
{% for name, c in categories %}<tr><td>{{ name }}</td><td>{{ c.n }}</td><td>{{ pct(c.accuracy) }}</td>
<td>{{ pct(c.accuracy_decisive) }}</td><td>{{ interval(c.accuracy_decisive_ci95) }}</td>
<td>{{ pct(c.release_accuracy) }}</td><td>{{ c.abstentions }}</td><td>{{ c.predicted_ties }}</td></tr>{% endfor %}
</table>{% endif %}
{% for title, png in plots %}<h2>{{ title }}</h2><img alt="{{ title }}" src="data:image/png;base64,{{ png }}">{% endfor %}
{% if bad_rows %}<h2>Rows not read ({{ r.bad_rows }})</h2><table><tr><th>row</th><th>reason</th></tr>
{% for b in bad_rows %}<tr><td>{{ b.row }}</td><td style="text-align:left">{{ b.reason }}</td></tr>{% endfor %}
</table>{% endif %}
</body></html>"""


def _pct(value: object) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"  # type: ignore[arg-type]


def _interval(value: object) -> str:
    return "-" if not value else f"{100 * value[0]:.1f}-{100 * value[1]:.1f}%"  # type: ignore[index]


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(result: dict[str, Any], summary: EvalSummary) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = []
    tallies = {name: t.figures() for name, t in sorted(summary.categories.items())} or {
        "all pairs": summary.overall.figures()
    }
    names = [n for n, f in tallies.items() if f["accuracy_decisive"] is not None]
    if names:
        fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 2), 3.2))
        values = [100 * float(tallies[n]["accuracy_decisive"]) for n in names]  # type: ignore[arg-type]
        low = [v - 100 * tallies[n]["accuracy_decisive_ci95"][0] for n, v in zip(names, values, strict=True)]  # type: ignore[index]
        high = [100 * tallies[n]["accuracy_decisive_ci95"][1] - v for n, v in zip(names, values, strict=True)]  # type: ignore[index]
        ax.bar(names, values, yerr=[low, high], capsize=4, color="#4a7bd0")
        ax.axhline(50, color="#999", lw=1, ls="--")
        ax.set_ylim(0, 100)
        ax.set_ylabel("decisive-pair accuracy, %")
        ax.tick_params(axis="x", rotation=20)
        plots.append(("Accuracy by category (decisive pairs, 95% Wilson interval; dashed: a coin)", _png(fig)))
        plt.close(fig)
    if summary.preferred:
        fig, ax = plt.subplots(figsize=(6, 3))
        edges = sorted(set(summary.preferred) | set(summary.rejected))
        ax.bar([e - 0.1 for e in edges], [summary.preferred[e] for e in edges], width=0.2, label="preferred by people")
        ax.bar([e + 0.1 for e in edges], [summary.rejected[e] for e in edges], width=0.2, label="rejected by people")
        ax.set_xlabel("summed score the critic gave")
        ax.set_ylabel("images")
        ax.legend()
        plots.append(("Scores of the preferred and the rejected image", _png(fig)))
        plt.close(fig)
    labels, predictions = ["A", "B", "tie"], ["A", "B", "tie", "abstain"]
    grid = [[summary.confusion[(label, p)] for p in predictions] for label in labels]
    if any(any(row) for row in grid):
        fig, ax = plt.subplots(figsize=(4.6, 3))
        ax.imshow(grid, cmap="Blues")
        ax.set_xticks(range(4), predictions)
        ax.set_yticks(range(3), labels)
        ax.set_xlabel("critic")
        ax.set_ylabel("label")
        for i, row in enumerate(grid):
            for j, n in enumerate(row):
                ax.text(j, i, str(n), ha="center", va="center", fontsize=9)
        plots.append(("Labels against predictions (ties and abstentions apart)", _png(fig)))
        plt.close(fig)
    return plots


def write_eval_report(out: Path, result: dict[str, Any], summary: EvalSummary) -> Path:
    keys = (
        ("pairs", "n"),
        ("judged", "judged"),
        ("abstentions", "abstentions"),
        ("label ties", "label_ties"),
        ("predicted ties", "predicted_ties"),
        ("accuracy (ours)", "accuracy_ours"),
        ("decisive-pair accuracy (ours)", "accuracy_decisive"),
        ("accuracy (release's accounting)", "release_accuracy"),
        ("groups", "groups"),
        ("exact-ranking accuracy (groups)", "exact_ranking_accuracy"),
    )
    headline = []
    for name, key in keys:
        if key not in result:
            continue
        value = result[key]
        shown = _pct(value) if "accuracy" in key else value
        if key == "accuracy_decisive" and result.get("accuracy_decisive_ci95"):
            shown = f"{shown} ({_interval(result['accuracy_decisive_ci95'])})"
        headline.append((name, shown))
    categories = sorted((result.get("categories") or {}).items())
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    page = env.from_string(_PAGE).render(
        r=result,
        headline=headline,
        categories=categories,
        plots=_plots(result, summary),
        bad_rows=result.get("bad_row_examples") or [],
        pct=_pct,
        interval=_interval,
    )
    path = out / "report.html"
    atomic_write_text(path, page)
    return path


__all__ = ["write_eval_report"]
