"""The HTML report of a rollout: a timeline of its waves and, per metric, a chart of the measured values
against the threshold, rendered offline (matplotlib SVG inside the page; no script, no network).

    path = write_report(record)        # record: rollout.json's content; writes report.html beside it
"""

import datetime as dt
import html
import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

STYLE = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.passed,.completed{color:#176f2c}
.failed,.rolled_back{color:#b00020}h2{margin-top:1.5em}svg{max-width:100%;height:auto}"""


def write_report(record, kpi_link=None):
    """report.html in the rollout's directory; returns its path."""
    path = os.path.join(record["dir"], "report.html")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(render(record, kpi_link))
    os.replace(tmp, path)
    return path


def render(record, kpi_link=None):
    e = html.escape
    f = record.get("failure") or {}
    head = (f"<h1>Rollout {e(record['id'])} of {e(record['fleet'])}</h1>"
            f"<p>{e(', '.join(record['from']))} → {e(str(record['to'] or 'previous versions'))}; "
            f"<span class='{e(str(record['result']))}'>{e(str(record['result']))}</span>"
            f" ({e(record['started_at'])} → {e(str(record['finished_at']))})</p>")
    if f:
        head += (f"<p class='failed'>Stopped at wave <b>{e(f['wave'])}</b>: {e(f['metric'])} = "
                 f"{e(_fmt(f.get('value')))} (threshold {e(str(f.get('threshold')))}). {e(str(f.get('reason') or ''))}</p>")
    if kpi_link:
        head += f"<p><a href='{e(kpi_link)}'>KPI dashboard</a></p>"
    rows = "".join(
        f"<tr><td>{e(w['name'])}</td><td>{e(', '.join(w['hosts']))}</td><td>{w['bake']}s</td><td>{e(w['started_at'])}</td>"
        f"<td>{e(str(w['finished_at']))}</td><td class='{e(w['result'])}'>{e(w['result'])}</td><td>"
        + ", ".join(f"{e(r['host'])} {r['seconds']}s" for r in w["replacements"]) + "</td></tr>"
        for w in record["waves"])
    back = record.get("rollback", {}).get("replacements", [])
    timeline = ("<h2>Waves</h2><table><tr><th>wave</th><th>hosts</th><th>bake</th><th>started</th><th>finished</th>"
                f"<th>result</th><th>replacements</th></tr>{rows}</table>")
    if back:
        timeline += "<p>Rolled back: " + ", ".join(f"{e(r['host'])} → {e(r['to'])} ({r['seconds']}s)" for r in back) + "</p>"
    charts = "".join(f"<h2>{e(metric)}</h2>{svg}" for metric, svg in charts_svg(record))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Rollout {e(record['id'])}</title>"
            f"<style>{STYLE}</style></head><body>{head}{timeline}{charts}</body></html>")


def charts_svg(record):
    """(metric, inline SVG) per metric measured: every host's value per measurement, and its limits."""
    by_metric = {}
    for w in record["waves"]:
        for m in w["measurements"]:
            by_metric.setdefault(m["metric"], []).append((w["name"], m))
    out = []
    for metric, points in by_metric.items():
        fig, ax = plt.subplots(figsize=(7, 2.6))
        hosts = sorted({h for _, m in points for h in m["values"]})
        for host in hosts:
            xs = [_time(m) for _, m in points if isinstance(m["values"].get(host), (int, float))]
            ys = [m["values"][host] for _, m in points if isinstance(m["values"].get(host), (int, float))]
            ax.plot(xs, ys, marker="o", label=host)
        for key, style in (("max", "--"), ("min", "--"), ("relative_max", ":"), ("relative_min", ":")):
            xs = [_time(m) for _, m in points if key in m["thresholds"]]
            if xs:
                ax.step(xs, [m["thresholds"][key] for _, m in points if key in m["thresholds"]], style,
                        where="post", color="#b00020", label=key.replace("_", " "))
        failed = [(_time(m), max(v for v in m["values"].values() if isinstance(v, (int, float))))
                  for _, m in points if not m["passed"] and any(isinstance(v, (int, float)) for v in m["values"].values())]
        if failed:
            ax.scatter(*zip(*failed), marker="x", s=80, color="#b00020", zorder=5, label="failed")
        ax.set_ylabel(metric)
        ax.legend(fontsize=7, loc="best")
        fig.autofmt_xdate()
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
        text = buf.getvalue()
        out.append((metric, text[text.index("<svg"):]))
    return out


def _time(m):
    return dt.datetime.fromtimestamp(m["time"], dt.timezone.utc)


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)
