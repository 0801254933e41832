"""`golden kpi --html FILE`: one self-contained page, the charts drawn offline by matplotlib as inline SVG.

    write(report, "kpi.html")       # image age over time, MTTR by phase, rollback ratio, drift per host

Nothing is fetched when the page is opened: no script, no font, no stylesheet from elsewhere.
"""

import datetime as dt
import io
import os

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pipeline.errors import GoldenError  # noqa: E402
from pipeline.kpi import figures, store_dashboard  # noqa: E402

DAY, HOUR = 86400, 3600
PHASE_COLOURS = {"rebuilt": "#4e79a7", "published": "#f28e2b", "rolled_out": "#59a14f"}
CHART_IDS = ("age-over-time", "mttr-by-phase", "rollback-ratio", "drift-per-host")
plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "golden-kpi", "figure.dpi": 96})


def _svg(fig, chart_id):
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):].replace("<svg", f'<svg id="{chart_id}" role="img"', 1)


def _figure(title):
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    ax.set_title(title, fontsize=11, loc="left")
    return fig, ax


def _no_data(ax, what):
    ax.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def age_chart(report):
    fig, ax = _figure("Image age over time (days): median solid, max dashed")
    drawn = False
    for series in report["age_history"]:
        points = series["points"]
        if not points:
            continue
        at = [dt.datetime.fromisoformat(p["at"]) for p in points]
        line, = ax.step(at, [p["median_seconds"] / DAY for p in points], where="post", label=series["fleet"])
        ax.step(at, [p["max_seconds"] / DAY for p in points], where="post", linestyle="--", color=line.get_color())
        drawn = True
    if drawn:
        ax.legend(fontsize=8)
        ax.set_ylabel("days")
        fig.autofmt_xdate()
    else:
        _no_data(ax, "fleet history")
    return _svg(fig, CHART_IDS[0])


def mttr_chart(report):
    rows = report["mttr"]["emergencies"]
    fig, ax = _figure("MTTR per emergency by phase (hours); open ones marked")
    if not rows:
        _no_data(ax, "emergency")
        return _svg(fig, CHART_IDS[1])
    names = [f"{e['cve']}{' (open)' if e['state'] == 'open' else ''}" for e in rows]
    left = [0.0] * len(rows)
    for phase, colour in PHASE_COLOURS.items():
        widths = [e["phases"].get(phase, 0) / HOUR for e in rows]
        ax.barh(names, widths, left=left, color=colour, label=f"→ {phase.replace('_', ' ')}")
        left = [a + b for a, b in zip(left, widths)]
    ax.axvline(24, color="#e15759", linestyle=":", label="24 h")
    ax.set_xlabel("hours since detection")
    ax.legend(fontsize=8)
    return _svg(fig, CHART_IDS[1])


def budget_chart(report):
    fig, ax = _figure("Rollback ratio per period (dotted: the budget)")
    drawn = False
    for b in report["failure_budget"]:
        periods = [p for p in b.get("periods", []) if p["ratio"] is not None]
        if not periods:
            continue
        ends = [dt.datetime.fromisoformat(p["end"]) for p in periods]
        line, = ax.plot(ends, [p["ratio"] for p in periods], marker="o", label=b["fleet"])
        ax.axhline(b["max_ratio"], color=line.get_color(), linestyle=":")
        drawn = True
    if drawn:
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        fig.autofmt_xdate()
    else:
        _no_data(ax, "rollout")
    return _svg(fig, CHART_IDS[2])


def drift_chart(report):
    hosts = [(f"{f['fleet']}/{h['host']}", h) for f in report["drift"]["fleets"] for h in f["hosts"]]
    fig, ax = _figure("Drift per host: packages against the image's SBOM (target 0; grey: could not ask)")
    if not hosts:
        _no_data(ax, "host")
        return _svg(fig, CHART_IDS[3])
    values = [h["packages"] if h["packages"] is not None else 0 for _, h in hosts]
    colours = ["#bab0ac" if h["packages"] is None else "#e15759" if h["packages"] else "#59a14f" for _, h in hosts]
    ax.bar([n for n, _ in hosts], values, color=colours)
    for i, (_, h) in enumerate(hosts):
        ax.text(i, values[i], "?" if h["packages"] is None else str(h["packages"]), ha="center", va="bottom")
    ax.set_ylabel("packages")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return _svg(fig, CHART_IDS[3])


def render(report):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.dirname(__file__)), autoescape=True)
    charts = [age_chart(report), mttr_chart(report), budget_chart(report), drift_chart(report)]
    return env.get_template("dashboard.html.j2").render(r=report, charts=charts, DAY=DAY, HOUR=HOUR)


def write(report, path):
    """Write the page whole or not at all (a reader never sees half of it)."""
    html, tmp = render(report), f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(html)
    os.replace(tmp, path)
    return path


def refresh(store, log=None):
    """Rewrite the store's dashboard from the store's records and its fleets' hosts, as `golden kpi` would;
    returns its path, or None (and says why through `log`) when it could not be written. A report links to
    the dashboard, never depends on it: a failure here changes no run's or rollout's result."""
    try:
        fleets = figures.select_fleets(store)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        path = store_dashboard(store.root)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return write(figures.figures(store, fleets, figures.observe(fleets), now), path)
    except (GoldenError, OSError, ValueError, KeyError) as exc:
        if log:
            log(f"KPI dashboard not refreshed: {exc}")
        return None
