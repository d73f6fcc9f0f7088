"""The report's index page (`report.html`) for runs of any size: pictures first, then every prompt in one table.

- Pictures (PNG files under `report/`): reward and ground-truth accuracy, first image against kept, per tag with 95%
  Wilson intervals; the reward histogram of first and kept images; stop reasons; rounds used.
- The table: one row per prompt with thumbnails of the first and the kept image, the prompt (linked to its place on
  its page), tag, stop reason, rounds, rewards and ground truth, and a status: `failed` (the kept image is wrong),
  `improved`, `regressed`, `unchanged` (by ground truth when a grader judged both images, else by reward).
  Sortable by any column, filtered by status, tag, stop reason and text, 100 rows a view.
- Size: the rows live in `report/rows-NNNN.js` files of `ROWS_PER_FILE` rows, loaded by script tags (a page opened
  from disk may not fetch files; it may load scripts), so no file holds more than a few hundred kilobytes whatever
  the run's size, and the index page itself is a few kilobytes.
- Settings read as a person reads them, not as Python values.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rationalrewards.plumbing.files import atomic_write_text
from rationalrewards.runtime.eval_runner import wilson_interval

ROWS_PER_FILE = 1000
HISTOGRAM_BINS = 20


def status_of(result: dict[str, Any]) -> str:
    """failed / improved / regressed / unchanged: by ground truth when both images were graded, else by reward."""
    if "grade_final" in result and "grade_initial" in result:
        before, after = bool(result["grade_initial"]["correct"]), bool(result["grade_final"]["correct"])
        if not after:
            return "regressed" if before else "failed"
        return "improved" if not before else "unchanged"
    first, kept = result.get("reward_initial"), result.get("reward_final")
    if first is None or kept is None:
        return "unchanged"
    return "improved" if kept > first + 1e-9 else "regressed" if kept < first - 1e-9 else "unchanged"


@dataclass
class IndexData:
    """Aggregates for the pictures, gathered one result at a time while the pages are written."""

    rewards_first: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)
    rewards_kept: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)
    tags: dict[str, list[int]] = field(default_factory=dict)  # tag -> [first correct, kept correct, graded]
    tag_rewards: dict[str, list[float]] = field(default_factory=dict)  # tag -> [sum first, sum kept, n]
    stops: Counter[str] = field(default_factory=Counter)
    rounds: Counter[int] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)

    def add(self, result: dict[str, Any]) -> None:
        tag = str(result.get("tag") or (result.get("grade_final") or {}).get("tag") or "untagged")
        for value, bins in (
            (result.get("reward_initial"), self.rewards_first),
            (result.get("reward_final"), self.rewards_kept),
        ):
            if isinstance(value, int | float):
                bins[min(HISTOGRAM_BINS - 1, max(0, int(value * HISTOGRAM_BINS)))] += 1
        first, kept = result.get("reward_initial"), result.get("reward_final")
        if isinstance(first, int | float) and isinstance(kept, int | float):
            sums = self.tag_rewards.setdefault(tag, [0.0, 0.0, 0.0])
            sums[0], sums[1], sums[2] = sums[0] + first, sums[1] + kept, sums[2] + 1
        if "grade_final" in result and "grade_initial" in result:
            counts = self.tags.setdefault(tag, [0, 0, 0])
            counts[0] += bool(result["grade_initial"]["correct"])
            counts[1] += bool(result["grade_final"]["correct"])
            counts[2] += 1
        self.stops[str(result.get("stop_reason") or "-")] += 1
        self.rounds[len(result.get("rounds") or [])] += 1
        self.statuses[status_of(result)] += 1


def table_row(result: dict[str, Any], page_href: str, rel: Any) -> list[object]:
    """One prompt's row of the table, compact (a list, in `COLUMNS` order): 100,000 of these are a few tens of MB."""
    candidates = result.get("candidates") or {}
    first = candidates.get("r0c0") or {}
    kept_key = (result.get("best") or {}).get("key")
    kept = candidates.get(kept_key) or {}
    grade = ("correct" if result["grade_final"]["correct"] else "wrong") if "grade_final" in result else ""
    grade_first = ("correct" if result["grade_initial"]["correct"] else "wrong") if "grade_initial" in result else ""
    sample_id = str(result.get("sample_id", ""))
    return [
        sample_id,
        str(result.get("prompt", ""))[:300],
        str(result.get("tag") or (result.get("grade_final") or {}).get("tag") or ""),
        status_of(result),
        str(result.get("stop_reason") or ""),
        len(result.get("rounds") or []),
        _round(result.get("reward_initial")),
        _round(result.get("reward_final")),
        grade_first,
        grade,
        rel(first["image"]["uri"]) if first.get("image") else "",
        rel(kept["image"]["uri"]) if kept.get("image") else "",
        f"{page_href}#{sample_id}",
    ]


COLUMNS = ["id", "prompt", "tag", "status", "stop", "rounds", "first reward", "kept reward", "first truth",
           "kept truth", "first", "kept", "href"]  # fmt: skip


def _round(value: object) -> float | None:
    return round(float(value), 3) if isinstance(value, int | float) else None


class RowFiles:
    """`report/rows-NNNN.js`, written `ROWS_PER_FILE` rows at a time as the pages are written."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.buffer: list[list[object]] = []
        self.names: list[str] = []
        for stale in directory.glob("rows-*.js"):
            stale.unlink()

    def add(self, row: list[object]) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= ROWS_PER_FILE:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        name = f"rows-{len(self.names) + 1:04d}.js"
        text = "(window.RR_ROWS = window.RR_ROWS || []).push(..." + json.dumps(self.buffer, ensure_ascii=False) + ");\n"
        atomic_write_text(self.directory / name, text.replace("</", "<\\/"))  # no row can close the script
        self.names.append(name)
        self.buffer = []


def _plot(data: IndexData, directory: Path) -> list[tuple[str, str]]:
    """The index's pictures, as (title, file name under `report/`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[tuple[str, str]] = []

    def save(fig: Any, name: str, title: str) -> None:
        fig.savefig(directory / name, dpi=90, bbox_inches="tight")
        plt.close(fig)
        made.append((title, name))

    if data.tags:
        names = sorted(data.tags)
        fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 3.2))
        for offset, index, label, colour in ((-0.2, 0, "first image", "#b0b7c3"), (0.2, 1, "kept image", "#2e9d4f")):
            values = [data.tags[t][index] / data.tags[t][2] for t in names]
            bounds = [wilson_interval(data.tags[t][index], data.tags[t][2]) or (0.0, 0.0) for t in names]
            pairs = list(zip(values, bounds, strict=True))
            errors = [[max(0.0, v - b[0]) for v, b in pairs], [max(0.0, b[1] - v) for v, b in pairs]]  # float dust
            ax.bar(
                [i + offset for i in range(len(names))], values, 0.4, yerr=errors, capsize=3, label=label, color=colour
            )
        ax.set_xticks(range(len(names)), names, rotation=20)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("correct (ground truth)")
        ax.legend()
        save(fig, "plot-accuracy.png", "Ground-truth accuracy per tag, first image and kept image (95% intervals)")
    if data.tag_rewards:
        names = sorted(data.tag_rewards)
        fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 3.2))
        for offset, index, label, colour in ((-0.2, 0, "first image", "#b0b7c3"), (0.2, 1, "kept image", "#1a4fa0")):
            ax.bar(
                [i + offset for i in range(len(names))],
                [data.tag_rewards[t][index] / data.tag_rewards[t][2] for t in names],
                0.4,
                label=label,
                color=colour,
            )
        ax.set_xticks(range(len(names)), names, rotation=20)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("mean reward")
        ax.legend()
        save(fig, "plot-reward-by-tag.png", "Mean reward per tag, first image and kept image")
    if any(data.rewards_first) or any(data.rewards_kept):
        fig, ax = plt.subplots(figsize=(6, 3))
        edges = [i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS)]
        ax.bar(
            [e + 0.25 / HISTOGRAM_BINS for e in edges],
            data.rewards_first,
            0.45 / HISTOGRAM_BINS,
            label="first image",
            color="#b0b7c3",
        )
        ax.bar(
            [e + 0.75 / HISTOGRAM_BINS for e in edges],
            data.rewards_kept,
            0.45 / HISTOGRAM_BINS,
            label="kept image",
            color="#1a4fa0",
        )
        ax.set_xlabel("reward")
        ax.set_ylabel("prompts")
        ax.legend()
        save(fig, "plot-rewards.png", "Rewards of the first and the kept image")
    if data.stops:
        fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
        reasons = sorted(data.stops, key=lambda r: -data.stops[r])
        axes[0].barh(reasons, [data.stops[r] for r in reasons], color="#7a8699")
        axes[0].set_xlabel("prompts")
        axes[0].set_title("stop reasons", fontsize=10)
        used = sorted(data.rounds)
        axes[1].bar([str(r) for r in used], [data.rounds[r] for r in used], color="#7a8699")
        axes[1].set_xlabel("rounds used")
        axes[1].set_title("rounds", fontsize=10)
        save(fig, "plot-stops.png", "Why the loop stopped, and how many rounds it used")
    return made


def _preset_name(config: dict[str, Any]) -> str:
    """The preset a run's loop settings match (those a preset decides), else `custom`."""
    from dataclasses import asdict

    from rationalrewards.graphs.gcr_config import PRESETS, GCRConfig

    decided = ("max_rounds", "candidates", "threshold", "stop_rule", "rescore", "keep_best", "seeds", "policy")
    for name in PRESETS:
        preset = asdict(GCRConfig.preset(name))
        if all(preset.get(k) == config.get(k) for k in decided):
            return name
    return "custom"


def readable_settings(settings: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's settings as a person reads them."""
    config = settings.get("config") or {}

    def yes(value: object) -> str:
        return "yes" if value else "no"

    shown = [
        ("Generator", str(settings.get("generator") or "-")),
        ("Critic", str(settings.get("critic") or "-")),
        ("Refiner", str(settings.get("refiner") or "the critique's refined request")),
    ]
    if settings.get("grader") not in (None, "none"):
        shown.append(("Ground truth from", str(settings["grader"])))
    if config:
        shown += [
            ("Preset", _preset_name(config)),
            ("Rounds", f"at most {config.get('max_rounds')}"),
            ("Images per round", str(config.get("candidates"))),
            (
                "Stops when",
                f"every active aspect scores at least {config.get('threshold')} ({config.get('stop_rule')} rule)",
            ),
            ("Refined images re-scored", yes(config.get("rescore"))),
            ("Reward policy", str(config.get("policy") or "-")),
        ]
    return [(name, value) for name, value in shown if value not in ("None", "at most None")]


_SCRIPT = """
const COLS = %(columns)s, STATUS = ["failed","improved","regressed","unchanged"];
const rows = window.RR_ROWS || []; let view = rows, sortKey = 0, sortUp = true, page = 0; const PER = 100;
const $ = (id) => document.getElementById(id);
function opts(sel, values) { for (const v of values) { const o = document.createElement("option"); o.value = o.textContent = v; sel.appendChild(o); } }
opts($("status"), STATUS); opts($("tag"), [...new Set(rows.map(r => r[2]))].filter(Boolean).sort());
opts($("stop"), [...new Set(rows.map(r => r[4]))].filter(Boolean).sort());
function read() { const p = new URLSearchParams(location.hash.slice(1)); for (const k of ["status","tag","stop","q"]) if (p.get(k)) $(k).value = p.get(k); }
function apply() {
  const s = $("status").value, t = $("tag").value, st = $("stop").value, q = $("q").value.toLowerCase();
  view = rows.filter(r => (!s || r[3] === s) && (!t || r[2] === t) && (!st || r[4] === st) && (!q || r[1].toLowerCase().includes(q)));
  view.sort((a, b) => { const x = a[sortKey], y = b[sortKey]; const c = x === y ? 0 : x === null ? 1 : y === null ? -1 : x < y ? -1 : 1; return sortUp ? c : -c; });
  page = 0; draw();
}
function cell(tr, v) { const td = document.createElement("td"); td.textContent = v === null ? "-" : v; tr.appendChild(td); return td; }
function thumb(tr, src) { const td = document.createElement("td"); if (src) { const i = document.createElement("img"); i.loading = "lazy"; i.src = src; i.className = "thumb"; td.appendChild(i); } tr.appendChild(td); }
function draw() {
  const body = $("rows"); body.textContent = "";
  for (const r of view.slice(page * PER, (page + 1) * PER)) {
    const tr = document.createElement("tr"); thumb(tr, r[10]); thumb(tr, r[11]);
    const td = document.createElement("td"); const a = document.createElement("a"); a.href = r[12]; a.textContent = r[1]; td.appendChild(a); tr.appendChild(td);
    cell(tr, r[2]); cell(tr, r[3]).className = "status " + r[3]; cell(tr, r[4]); cell(tr, r[5]); cell(tr, r[6]); cell(tr, r[7]); cell(tr, r[8] || "-"); cell(tr, r[9] || "-");
    body.appendChild(tr);
  }
  $("count").textContent = view.length; $("pageno").textContent = view.length ? (page + 1) + " / " + Math.ceil(view.length / PER) : "-";
}
for (const id of ["status","tag","stop","q"]) $(id).addEventListener("input", () => { history.replaceState(null, "", "#" + new URLSearchParams({status: $("status").value, tag: $("tag").value, stop: $("stop").value, q: $("q").value})); apply(); });
for (const th of document.querySelectorAll("th[data-key]")) th.addEventListener("click", () => { const k = +th.dataset.key; sortUp = k === sortKey ? !sortUp : true; sortKey = k; apply(); });
$("prev").onclick = () => { if (page > 0) { page--; draw(); } }; $("next").onclick = () => { if ((page + 1) * PER < view.length) { page++; draw(); } };
read(); apply();
"""

_INDEX = """<!doctype html><html><head><meta charset="utf-8"><title>GCR report</title><style>{{ css }}
.thumb{width:72px;height:72px;object-fit:contain;background:#eee;border:1px solid #ddd} .plots img{max-width:100%;margin:6px 0 14px;border:1px solid #e3e3e3;background:#fff}
table.prompts{border-collapse:collapse;background:#fff;width:100%} table.prompts td,table.prompts th{border-bottom:1px solid #eee;padding:3px 6px;font-size:13px;text-align:left;vertical-align:middle}
table.prompts th[data-key]{cursor:pointer;color:#1a4fa0} .status.failed,.status.regressed{color:#9b1c1c;font-weight:600} .status.improved{color:#17632e;font-weight:600}
.filters{margin:10px 0} .filters select,.filters input{margin-right:8px} dl.settings{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:13px} dl.settings dt{color:#666}
</style></head><body>
<h1>Generate-Critique-Refine run</h1>
<dl class="settings">{% for name, value in settings %}<dt>{{ name }}</dt><dd style="margin:0">{{ value }}</dd>{% endfor %}</dl>
<table class="summary"><tr><th></th><th>first image</th><th>kept image</th></tr>
{% for row in rows %}<tr><td>{% if row.indent %}&nbsp;&nbsp;{% endif %}{{ row.name }}</td><td>{{ row.before }}</td><td>{{ row.after }}</td></tr>{% endfor %}</table>
<div class="muted">{{ finished }} prompts: {% for name, n in statuses %}{{ n }} {{ name }}{% if not loop.last %}, {% endif %}{% endfor %}{% if failed %}; {{ failed }} errors (below){% endif %}</div>
<div class="plots">{% for title, src in plots %}<h2>{{ title }}</h2><img alt="{{ title }}" src="{{ src }}">{% endfor %}</div>
<h2>Prompts</h2>
<div class="filters">status <select id="status"><option value="">all</option></select> tag <select id="tag"><option value="">all</option></select>
stop <select id="stop"><option value="">all</option></select> <input id="q" placeholder="prompt contains"> <span id="count"></span> prompts ·
page <span id="pageno"></span> <button id="prev">previous</button><button id="next">next</button></div>
<table class="prompts"><thead><tr><th>first</th><th>kept</th><th data-key="1">prompt</th><th data-key="2">tag</th><th data-key="3">status</th>
<th data-key="4">stop</th><th data-key="5">rounds</th><th data-key="6">first reward</th><th data-key="7">kept reward</th><th data-key="8">first truth</th><th data-key="9">kept truth</th></tr></thead>
<tbody id="rows"></tbody></table>
<p class="muted">Pages of every round of every prompt: {% for page in pages %}<a href="{{ page.href }}">{{ loop.index }}</a> {% endfor %}</p>
{% if failures %}<h2>Errors ({{ failed }})</h2><ul>{% for f in failures %}<li>{{ f.prompt or f.sample_id }}: {{ f.error }}</li>{% endfor %}</ul>
{% if failed > failures|length %}<div class="muted">and {{ failed - failures|length }} more in failures.jsonl</div>{% endif %}{% endif %}
{% for name in row_files %}<script src="{{ name }}"></script>
{% endfor %}<script>{{ script }}</script>
</body></html>"""


def render_index(
    env: Any,
    css: str,
    *,
    data: IndexData,
    directory: Path,
    pages_dir_name: str,
    row_files: list[str],
    settings: dict[str, Any],
    summary_rows: list[dict[str, object]],
    summary: dict[str, Any],
    pages: list[dict[str, object]],
    finished: int,
) -> str:
    plots = [(title, f"{pages_dir_name}/{name}") for title, name in _plot(data, directory)]
    failures = summary.get("failures") or []
    from markupsafe import Markup

    return str(
        env.from_string(_INDEX).render(
            css=css,
            settings=readable_settings(settings),
            rows=summary_rows,
            finished=finished,
            statuses=sorted(
                data.statuses.items(), key=lambda kv: ["failed", "regressed", "improved", "unchanged"].index(kv[0])
            ),
            failed=summary.get("failed", len(failures)),
            failures=failures[:100],
            plots=plots,
            pages=pages,
            row_files=[f"{pages_dir_name}/{name}" for name in row_files],
            script=Markup(_SCRIPT % {"columns": json.dumps(COLUMNS)}),
        )
    )


__all__ = ["COLUMNS", "IndexData", "RowFiles", "readable_settings", "render_index", "status_of", "table_row"]
