"""report.html: one self-contained page of a method's scores (and, given a second method,
the comparison) that opens offline: CSS and SVG inline, frames as base64 JPEGs, nothing
fetched.

It shows the overall table with the 95% intervals, the per-video scores sorted as a chart,
the breakdowns (object-size terciles; LVOS seen/unseen; MOSE v2 disappearance and
reappearance), the worst videos as strips of frames (the ground truth beside each
method's masks, drawn over the frames) and the per-object table.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from evaluation.scoring import Scores, Target, score, scores_json
from util.atomic import atomic_save
from util.overlay import overlay
from util.palette import davis_palette, read_image, read_mask

WORST = 3  # videos shown as strips
STRIP_FRAMES = 4
THUMB_HEIGHT = 120  # pixels
FEW_VIDEOS = 10  # below this the report warns that the intervals are rough

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#f2f2f2} td:first-child,th:first-child{text-align:left}
.frame{display:inline-block;white-space:nowrap;margin:0 12px 8px 0} figure{display:inline-block;margin:0 2px}
figcaption{font-size:12px;color:#555} .note{color:#555}
"""


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return html.escape(str(value))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _interval(ci) -> str:
    return "–" if ci is None or None in ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _overall(results: list[dict], names: list[str], comparison: dict | None) -> str:
    metrics = list(results[0]["overall"])
    header = ["metric"] + [f"{n} {h}" for n in names for h in ("", "95% CI")]
    rows = [[m] + [x for r in results for x in (r["overall"][m], _interval(r["ci95"][m]))] for m in metrics]
    out = _table([h.strip() for h in header], rows)
    if comparison:
        a, b = comparison["names"]["a"], comparison["names"]["b"]
        rows = [[m, c["difference"], _interval(c["ci95"]), c["p_value"]] for m, c in comparison["metrics"].items()]
        wins = comparison["wins"]
        out += (
            f"<h3>{html.escape(b)} − {html.escape(a)}</h3>"
            + _table(["metric", "difference", "95% CI (paired bootstrap)", "p (sign-flip)"], rows)
            + f"<p>Per video ({html.escape(comparison['headline'])}): {html.escape(b)} better on {wins['b']}, "
            f"{html.escape(a)} better on {wins['a']}, tied on {wins['tie']}.</p>"
        )
    return out


def _chart(results: list[dict], names: list[str], headline: str) -> str:
    """Horizontal bars of the first method's per-video headline, sorted; the second method as
    a tick on each bar."""
    first = [r for r in results[0]["per_video"] if r[headline] is not None]
    first.sort(key=lambda r: r[headline])
    others = [{r["video"]: r[headline] for r in res["per_video"]} for res in results[1:]]
    top = max([1.0] + [r[headline] for r in first] + [v or 0 for o in others for v in o.values()])
    row, width, left = 14, 500, 170
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{row * len(first) + 20}">']
    for i, r in enumerate(first):
        y, w = i * row + 2, width * r[headline] / top
        parts.append(
            f'<text x="{left - 4}" y="{y + 10}" font-size="10" text-anchor="end">{html.escape(r["video"])}</text>'
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 3}" fill="#4c78a8">'
            f"<title>{html.escape(r['video'])}: {r[headline]:.3f}</title></rect>"
            f'<text x="{left + w + 3:.1f}" y="{y + 10}" font-size="9">{r[headline]:.3f}</text>'
        )
        for other in others:
            value = other.get(r["video"])
            if value is not None:
                x = left + width * value / top
                parts.append(f'<rect x="{x - 1:.1f}" y="{y - 1}" width="3" height="{row - 1}" fill="#e45756"/>')
    parts.append("</svg>")
    legend = f"bars: {html.escape(names[0])}" + (f"; red ticks: {html.escape(names[1])}" if others else "")
    return f"<p class=note>{html.escape(headline)} per video, sorted; {legend}.</p>" + "".join(parts)


def _object_value(row: dict, target: Target, headline: str) -> float | None:
    """An object's own value of the headline metric (the mean of its terms it has)."""
    values = []
    for term in target.metrics[headline]:
        key, _, group = term.partition("@")
        if (not group or row.get("seen") == (group == "seen")) and row.get(key) is not None:
            values.append(row[key])
    return float(np.mean(values)) if values else None


def _breakdowns(results: list[dict], names: list[str], target: Target, headline: str) -> str:
    out = []
    areas = np.array([r["area"] for r in results[0]["per_object"]])
    if len(areas) >= 3:
        bounds = np.quantile(areas, [1 / 3, 2 / 3])
        tercile = np.digitize(areas, bounds)
        rows = []
        for t, label in enumerate(("small", "medium", "large")):
            members = np.flatnonzero(tercile == t)
            row = [label, len(members)]
            for res in results:
                values = [_object_value(res["per_object"][i], target, headline) for i in members]
                values = [v for v in values if v is not None]
                row.append(float(np.mean(values)) if values else None)
            rows.append(row)
        out.append(
            "<h3>Object-size terciles</h3><p class=note>size: the object's mean share of the frame where it is "
            "present (on up to 5 ground-truth frames of its video); value: the objects' mean "
            f"{html.escape(headline)}.</p>" + _table(["size", "objects"] + names, rows)
        )
    groups = {
        "lvos": ("LVOS seen / unseen categories", ["J-seen-Mean", "J-unseen-Mean", "F-seen-Mean", "F-unseen-Mean"]),
        "mose2": ("MOSE v2 disappearance / reappearance", ["disappear_J&F_new", "reappear_J&F_new", "J&F_new"]),
    }
    key = "lvos" if target.benchmark.startswith("lvos") else target.benchmark
    if key in groups:
        title, metrics = groups[key]
        rows = [[m] + [res["overall"][m] for res in results] for m in metrics]
        out.append(f"<h3>{title}</h3>" + _table(["metric"] + names, rows))
    return "".join(out)


def _labels(folder: Path, stem: str, target: Target, shape: tuple[int, int]) -> np.ndarray:
    """The label map of one frame (SA-V: composed from the object folders, object n as n+1);
    zeros where there is no mask."""
    labels = np.zeros(shape, np.uint8)
    if target.per_object_png:
        for n, obj in enumerate(sorted(p.name for p in folder.iterdir() if p.is_dir())):
            if (folder / obj / f"{stem}.png").is_file():
                labels[_fit(read_mask(folder / obj / f"{stem}.png"), shape) > 0] = n + 1
    elif (folder / f"{stem}.png").is_file():
        mask = _fit(read_mask(folder / f"{stem}.png"), shape)
        labels = (mask > 127).astype(np.uint8) if target.binary else np.where(mask == 255, 0, mask)
    return labels


def _fit(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    return cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


def _jpeg(rgb: np.ndarray) -> str:
    scale = THUMB_HEIGHT / rgb.shape[0]
    small = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), THUMB_HEIGHT), interpolation=cv2.INTER_AREA)
    buffer = io.BytesIO()
    Image.fromarray(small).save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _strips(runs: list[Scores], results: list[dict], names: list[str], headline: str) -> str:
    target = runs[0].target
    per_video = [r for r in results[0]["per_video"] if r[headline] is not None]
    worst = sorted(per_video, key=lambda r: r[headline])[:WORST]
    videos = {v.name: v for v in target.videos}
    palette = davis_palette()
    out = []
    for row in worst:
        video = videos[row["video"]]
        if video.frames.files is None:
            continue  # frames in a video file: no strip
        gt_dir = video.gt_dir
        stems = sorted({p.stem for p in gt_dir.rglob("*.png")})
        picks = [stems[int(i)] for i in np.unique(np.linspace(0, len(stems) - 1, STRIP_FRAMES).round())]
        cells = []
        for stem in picks:
            index = video.frames.index_of(stem)
            if index is None:
                continue
            rgb = read_image(video.frames.files[index])
            sources = [("ground truth", gt_dir)] + [(n, run.predictions / video.name) for n, run in zip(names, runs)]
            figures = [
                f'<figure><img src="{_jpeg(overlay(rgb, _labels(folder, stem, target, rgb.shape[:2]), palette))}">'
                f"<figcaption>{html.escape(stem)}: {html.escape(label)}</figcaption></figure>"
                for label, folder in sources
            ]
            cells.append(f"<div class=frame>{''.join(figures)}</div>")
        scores = ", ".join(
            f"{html.escape(n)} {_fmt(next(v[headline] for v in r['per_video'] if v['video'] == row['video']))}"
            for n, r in zip(names, results)
        )
        out.append(f"<h3>{html.escape(row['video'])} ({scores})</h3><div>{''.join(cells)}</div>")
    return "".join(out)


def render(runs: list[Scores], results: list[dict], names: list[str], comparison: dict | None = None) -> str:
    """The page for one method, or two with their comparison (``results``: scores.json of each)."""
    target = runs[0].target
    headline = target.headline
    first = results[0]
    objects = first["per_object"]
    metric_keys = [k for k in objects[0] if k not in ("video", "object", "area")] if objects else []
    object_rows = [[o["object"]] + [o[k] for k in metric_keys] + [o["area"]] for o in objects]
    title = f"{target.benchmark}: " + " vs ".join(names)
    few = (
        f"; with fewer than {FEW_VIDEOS} videos (or per group) they say little"
        if len(first["per_video"]) < FEW_VIDEOS
        else ""
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class=note>{len(first['per_video'])} videos, {len(objects)} objects; units: {first['units']} "
        f"(the official tool's); 95% intervals by a bootstrap over videos ({first['bootstrap']['resamples']} "
        f"resamples, seed {first['bootstrap']['seed']}){few}.</p>"
        f"<h2>Overall</h2>{_overall(results, names, comparison)}"
        f"<h2>Per video</h2>{_chart(results, names, headline)}"
        f"<h2>Breakdowns</h2>{_breakdowns(results, names, target, headline)}"
        f"<h2>Worst videos ({html.escape(names[0])})</h2>{_strips(runs, results, names, headline)}"
        f"<h2>Per object ({html.escape(names[0])})</h2>{_table(['object', *metric_keys, 'area'], object_rows)}"
        "</body></html>"
    )


def write_report(
    path: Path, runs: list[Scores], results: list[dict], names: list[str], comparison: dict | None = None
) -> None:
    page = render(runs, results, names, comparison)
    atomic_save(lambda tmp: tmp.write_text(page, encoding="utf-8"), path)


def write_scores(target: Target, predictions: Path, out_dir: Path, name: str | None = None) -> tuple[Scores, dict]:
    """``out_dir``/scores.json and report.html of one method's masks (as score.py writes
    them, with the default resampling): what the evaluation scripts write beside their masks."""
    run = score(target, predictions, label=name or "")
    result = scores_json(run)
    atomic_save(lambda tmp: tmp.write_text(json.dumps(result, indent=1)), out_dir / "scores.json")
    write_report(out_dir / "report.html", [run], [result], [name or Path(predictions).name])
    return run, result
