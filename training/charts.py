"""Figures for dataset and job pages, built with plotly and sent to the page as JSON."""
from __future__ import annotations

import json

import plotly.graph_objects as go

ACCENT = "#4f46e5"


def _fig(fig: go.Figure, height: int = 260) -> dict:
    fig.update_layout(height=height, showlegend=False)
    return json.loads(fig.to_json())


def column_histogram(column: dict) -> dict | None:
    hist = column.get("histogram")
    if hist and hist.get("counts"):
        edges = hist["edges"]
        centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
        widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
        return _fig(go.Figure(go.Bar(x=centers, y=hist["counts"], width=widths, marker_color=ACCENT)), 200)
    top = column.get("top")
    if top:
        return _fig(go.Figure(go.Bar(x=[str(t["value"]) for t in top], y=[t["count"] for t in top], marker_color=ACCENT)), 200)
    return None


def importance_chart(importance: list[dict], limit: int = 20) -> dict | None:
    if not importance:
        return None
    top = sorted(importance, key=lambda r: r.get("importance") or 0)[-limit:]
    fig = go.Figure(go.Bar(x=[r.get("importance") for r in top], y=[r["feature"] for r in top], orientation="h", marker_color=ACCENT))
    return _fig(fig, max(220, 24 * len(top)))


def trials_chart(trials: list[dict], metric: str) -> dict | None:
    done = [t for t in trials if t.get("cv_mean") is not None]
    if len(done) < 2:
        return None
    fig = go.Figure(go.Scatter(x=[t["number"] for t in done], y=[t["cv_mean"] for t in done], mode="markers+lines",
                               error_y={"type": "data", "array": [t.get("cv_std") or 0 for t in done]}, marker_color=ACCENT))
    fig.update_layout(xaxis_title="trial", yaxis_title=f"CV {metric}")
    return _fig(fig)


def confusion_chart(matrix: dict | None) -> dict | None:
    if not matrix or not matrix.get("matrix"):
        return None
    labels = [str(c) for c in matrix["labels"]]
    fig = go.Figure(go.Heatmap(z=matrix["matrix"], x=labels, y=labels, colorscale="Blues", texttemplate="%{z}"))
    fig.update_layout(xaxis_title="predicted", yaxis_title="actual", yaxis_autorange="reversed")
    return _fig(fig, 320)


def curve_chart(points: dict | None, x: str, y: str, title: str) -> dict | None:
    if not points or not points.get(x):
        return None
    fig = go.Figure(go.Scatter(x=points[x], y=points[y], mode="lines", line_color=ACCENT))
    fig.update_layout(xaxis_title=title.split(" vs ")[1] if " vs " in title else x, yaxis_title=y, title=title)
    return _fig(fig, 300)


def residuals_chart(sample: dict | None) -> dict | None:
    if not sample or not sample.get("predicted"):
        return None
    fig = go.Figure(go.Scatter(x=sample["predicted"], y=sample["residual"], mode="markers", marker={"color": ACCENT, "size": 5, "opacity": 0.6}))
    fig.update_layout(xaxis_title="predicted", yaxis_title="residual")
    return _fig(fig, 300)


def leaderboard_chart(leaderboard: list[dict], metric: str) -> dict | None:
    done = [r for r in leaderboard if r.get("cv_mean") is not None]
    if not done:
        return None
    fig = go.Figure()
    for algorithm in sorted({r["algorithm"] for r in done}):
        rows = [r for r in done if r["algorithm"] == algorithm]
        fig.add_scatter(name=algorithm, x=[r.get("fit_time_s") for r in rows], y=[r["cv_mean"] for r in rows], mode="markers",
                        marker={"size": 9}, text=[f"#{r.get('rank')}" for r in rows])
    fig.update_layout(xaxis_title="fit time (s)", yaxis_title=f"CV {metric}")
    fig = _fig(fig, 320)
    fig["layout"]["showlegend"] = True
    return fig
