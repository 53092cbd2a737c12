"""The comparison as one self-contained HTML page: figures embedded, no request leaves the page.

The page reads top-down the way a stakeholder asks: which comparison this is (its population),
the verdict in plain words, then each section's numbers with their intervals and adjusted
p-values, the figures beside them. Every number comes from ``comparison.json``.
"""

from __future__ import annotations

from html import escape

from closedloop.compare.figures import BASELINE_COLOUR, CANDIDATE_COLOUR
from closedloop.compare.verdict import formatted
from closedloop.core.html import embedded_png, page
from closedloop.ops.stats import NO_ROUTE

_SECTIONS = (
    ("production", "Production metrics (the registry's)", None),
    ("quality", "Quality", None),
    ("estimated", "Quality expected once the labels mature (estimated)", None),
    ("calibration", "Calibration", "reliability"),
    ("scores", "Scores", "scores"),
    ("decisions", "Decisions", "decisions"),
    ("operations", "Operations", None),
)
_VERDICT_CLASS = {"better": "better", "worse": "worse", "changed": "changed"}
_STYLE = f"""
.population {{ font-size: 1.05rem; color: #444; }}
.verdict {{ background: #f6f8fa; border-left: 4px solid #555; padding: .6rem 1rem; }}
.verdict li {{ margin: .15rem 0; }}
td.better {{ color: #1a7f37; font-weight: 600; }} td.worse {{ color: #cf222e; font-weight: 600; }}
td.changed {{ color: #9a6700; font-weight: 600; }}
.baseline {{ color: {BASELINE_COLOUR}; font-weight: 600; }}
.candidate {{ color: {CANDIDATE_COLOUR}; font-weight: 600; }}
"""


def _image(figures: dict[str, bytes], name: str, alt: str) -> str:
    return embedded_png(figures.get(name), alt, "the data for it is missing (see the numbers above)")


def _list(title: str, items: list[str]) -> str:
    if not items:
        return ""
    return f"<p><strong>{escape(title)}</strong></p><ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def _interval(r: dict) -> str:
    if r["difference"] is None:
        return ""
    unit = r["unit"]
    if r["lower"] is None:
        return formatted(r["difference"], unit)
    return f"{formatted(r['difference'], unit)} [{formatted(r['lower'], unit)}, {formatted(r['upper'], unit)}]"


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _table(rows: list[dict], baseline: str, candidate: str, segments: bool = False) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            *(("segment",) if segments else ()),
            "metric",
            f'<span class="baseline">{escape(baseline)}</span>',
            f'<span class="candidate">{escape(candidate)}</span>',
            "difference [95% interval]",
            "p",
            "adjusted p",
            "verdict",
            "test / note",
        )
    )
    body = []
    for r in rows:
        where = f"<td>{escape(str(r['segment']))}={escape(str(r['segment_value']))}</td>" if segments else ""
        note = "; ".join(x for x in (r["test"], r["labels"] and f"labels {r['labels']}", r["note"]) if x)
        body.append(
            f"<tr>{where}<td>{escape(r['metric'])}</td><td>{formatted(r['baseline'], r['unit'])}</td>"
            f"<td>{formatted(r['candidate'], r['unit'])}</td><td>{escape(_interval(r))}</td>"
            f"<td>{_p(r['p_value'])}</td><td>{_p(r['p_adjusted'])}</td>"
            f'<td class="{_VERDICT_CLASS.get(r["verdict"], "")}">{escape(r["verdict"])}</td>'
            f'<td class="note">{escape(note)}</td></tr>'
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _thresholds(document: dict, baseline: str, candidate: str) -> str:
    names = {
        "baseline": f"{baseline} at its threshold",
        "candidate": f"{candidate} at its threshold",
        "candidate_keeping_baseline_rate": f"{candidate} at the threshold keeping {baseline}'s decision rate",
        "candidate_keeping_baseline_precision": f"{candidate} at the threshold keeping {baseline}'s precision",
    }
    rows = []
    for key, name in names.items():
        t = document["thresholds"].get(key)
        if not t:
            continue
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{t['threshold']:.4g}</td><td>{formatted(t['decision_rate'], 'share')}</td>"
            f"<td>{formatted(t['precision'], 'share')}</td><td>{formatted(t['recall'], 'share')}</td></tr>"
        )
    head = "<tr><th>policy</th><th>threshold</th><th>decision rate</th><th>precision</th><th>recall</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _labels(document: dict) -> str:
    labels = document["labels"]
    rows = [
        f"<tr><td>{escape(v)}</td><td>{x['rows']:,}</td><td>{x['labeled_so_far']:,}</td>"
        f"<td>{formatted(x['coverage_so_far'], 'share')}</td><td>{x['matured']:,}</td>"
        f"<td>{formatted(x['coverage_matured'], 'share')}</td></tr>"
        for v, x in labels["versions"].items()
    ]
    head = (
        "<tr><th>version</th><th>requests</th><th>labels so far</th><th>coverage so far</th>"
        "<th>matured labels</th><th>matured coverage</th></tr>"
    )
    rests = labels["label_set"] or "no labels (too few of either class)"
    return (
        f"<p>Quality rests on: <strong>{escape(rests)}</strong>.</p>"
        f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _drift(document: dict) -> str:
    rows = document["input_drift"]
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{escape(r['column'])}</td><td>{escape(r['metric'])}</td><td>{formatted(r['value'], 'score')}</td>"
        f"<td>{formatted(r['threshold'], 'score')}</td><td>{escape(r['status'])}</td></tr>"
        for r in rows
        if r["status"] != "ok"
    )
    if not body:
        return "<h2>Input drift between the periods</h2><p>No input moved past its drift limit between the periods.</p>"
    head = "<tr><th>input</th><th>metric</th><th>value</th><th>limit</th><th>status</th></tr>"
    return f"<h2>Input drift between the periods</h2><table><thead>{head}</thead><tbody>{body}</tbody></table>"


def _routes(document: dict) -> str:
    """Requests, p95 latency and cost per route of each version, when the model has routes."""
    rows = [(v, r) for v, routes in document["routes"].items() for r in routes if r["route"] != NO_ROUTE]
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{escape(v)}</td><td>{escape(str(r['route']))}</td><td>{formatted(r['requests'], 'requests')}</td>"
        f"<td>{formatted(r['latency_p95_ms'], 'ms')}</td><td>{formatted(r['cost_per_1k'], 'usd')}</td></tr>"
        for v, r in rows
    )
    head = "<tr><th>version</th><th>route</th><th>requests</th><th>latency p95</th><th>cost per 1k</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def comparison_html(document: dict, figures: dict[str, bytes]) -> str:
    c = document["comparison"]
    baseline, candidate = c["baseline"]["version"], c["candidate"]["version"]
    v = document["verdict"]
    parts = [
        f"<h1>{escape(c['model'])}: what changed from {escape(baseline)} to {escape(candidate)}</h1>",
        f"<p class='population'>{escape(document['headline'])}</p>",
        "<div class='verdict'>",
        f"<p><strong>{escape(v['summary'])}.</strong></p>",
        _list("Worse", v["worse"]),
        _list("Better", v["better"]),
        _list("Changed", v["changed"]),
        _list("Not distinguishable yet", v["not_distinguishable"]),
        _list("Check before 100%", v["check_before_full_rollout"]),
        "</div>",
        "<h2>Labels behind the verdict</h2>",
        _labels(document),
    ]
    for section, title, figure in _SECTIONS:
        rows = [r for r in document["metrics"] if r["section"] == section]
        if not rows and figure is None:
            continue
        parts.append(f"<h2>{escape(title)}</h2>")
        if rows:
            parts.append(_table(rows, baseline, candidate))
        if section == "decisions":
            parts.append(_thresholds(document, baseline, candidate))
        if section == "operations":
            parts.append(_routes(document))
        if figure:
            parts.append(_image(figures, figure, title.lower()))
    parts.append("<h2>Segments</h2>")
    worse = document["segments"]["worse"]
    parts.append(
        _table(worse, baseline, candidate, segments=True)
        if worse
        else "<p>No segment is significantly worse after adjusting for the number of slices and metrics.</p>"
    )
    parts.append(_image(figures, "segments", "segments"))
    parts.append(_drift(document))
    if document["canary"]:
        parts.append("<h2>The canary, day by day</h2>")
        parts.append(
            "<p class='note'>Each band holds on every day at once (a 95% confidence sequence), so looking at it daily "
            "does not inflate false alarms; a difference is certain once its band leaves zero.</p>"
        )
        parts.append(_list("", document["verdict"]["canary"]))
        parts.append(_image(figures, "canary", "canary"))
    parts.append("<p class='note'>Every number on this page is in comparison.json beside it.</p>")
    title = f"{c['model']}: {candidate} against {baseline}"
    return page(title, "\n".join(p for p in parts if p), _STYLE)
