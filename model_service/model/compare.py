"""Champion against challenger, on live traffic and on a month with actuals: what ``compare`` prints and draws.

On the stream, the champion's consumer (``duration``) and the challenger's
shadow (``duration-shadow``) each answer every ride; their events are joined
by the input record they answer for (the ``event_id`` before its consumer),
so a ride counts once however often either side repeated it. Live traffic
has no actuals, so this shows how far the two disagree, and whether the
shadow keeps up (rides seen by one side only).

On a month of trips with actuals, both models predict the trips training
validates on (the same filters), and their RMSEs are compared with a paired
bootstrap interval of the difference: the figure a promotion can be gated on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from model_service.model.aliases import SHADOW_SUFFIX
from model_service.model.target import Target

BOOTSTRAP_SAMPLES = 1000
PLOTTED_TRIPS = 5000
"""Trips drawn in the scatter: enough to see the shape, few enough to see each point."""


@dataclass(frozen=True)
class StreamComparison:
    """The two sides' answers for the same rides; ``differences`` is challenger minus champion, per ride."""

    compared: int
    champion_only: int
    challenger_only: int
    differences: np.ndarray
    champion_versions: frozenset[str]
    challenger_versions: frozenset[str]


def _answers(events: Iterable[dict[str, Any]], target: Target, consumer: str) -> tuple[dict[str, float], set[str]]:
    """Input record -> the value ``consumer`` answered (its first event of each: repeats carry the same)."""
    answers: dict[str, float] = {}
    versions: set[str] = set()
    for event in events:
        record, _, who = str(event.get("event_id", "")).rpartition("/")
        prediction = event.get("prediction")
        if who != consumer or event.get("model") != target.event_model or not isinstance(prediction, dict):
            continue
        value = prediction.get(target.event_field)
        if isinstance(value, int | float) and not isinstance(value, bool) and record not in answers:
            answers[record] = float(value)
            versions.add(str(event.get("version")))
    return answers, versions


def join_events(
    champion_events: Iterable[dict[str, Any]], challenger_events: Iterable[dict[str, Any]], target: Target
) -> StreamComparison:
    champion, champion_versions = _answers(champion_events, target, target.name)
    challenger, challenger_versions = _answers(challenger_events, target, f"{target.name}{SHADOW_SUFFIX}")
    both = sorted(champion.keys() & challenger.keys())
    differences = np.array([challenger[record] - champion[record] for record in both], dtype=np.float64)
    return StreamComparison(
        compared=len(both),
        champion_only=len(champion.keys() - challenger.keys()),
        challenger_only=len(challenger.keys() - champion.keys()),
        differences=differences,
        champion_versions=frozenset(champion_versions),
        challenger_versions=frozenset(challenger_versions),
    )


def stream_lines(
    stream: StreamComparison, target: Target, streams: tuple[str, str], since: datetime | None
) -> list[str]:
    window = "all they keep" if since is None else f"since {since:%Y-%m-%d %H:%M:%S} UTC"
    versions = [", ".join(sorted(v)) or "-" for v in (stream.champion_versions, stream.challenger_versions)]
    lines = [
        f"on {streams[0]} and {streams[1]}, {window}:",
        f"  rides answered by both:     {stream.compared:,}",
        f"  by the champion only:       {stream.champion_only:,}",
        f"  by the challenger only:     {stream.challenger_only:,}",
        f"  versions:                   champion {versions[0]}, challenger {versions[1]}",
    ]
    if stream.compared:
        d = stream.differences
        p50, p95 = np.percentile(np.abs(d), [50, 95])
        lines.append(
            f"  challenger - champion:      mean {d.mean():+.3f} {target.unit}; |difference| p50 {p50:.3f},"
            f" p95 {p95:.3f}, max {np.abs(d).max():.3f}"
        )
    return lines


@dataclass(frozen=True)
class MonthComparison:
    """Both models on the same trips with actuals; ``interval`` bounds challenger RMSE minus champion RMSE (95%)."""

    path: str
    actual: np.ndarray
    champion: np.ndarray
    challenger: np.ndarray
    champion_rmse: float
    challenger_rmse: float
    interval: tuple[float, float]

    @property
    def difference(self) -> float:
        return self.challenger_rmse - self.champion_rmse


def _rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((actual - predicted) ** 2)))


def compare_on_trips(path: str, target: Target, champion: Any, challenger: Any, seed: int = 0) -> MonthComparison:
    """Both models (``PredictionService``) on the trips of ``path`` training would validate ``target`` on."""
    from model_service.errors import BadInputFile
    from model_service.trips import ID_COLUMNS, learnable, read_training_trips

    trips = learnable(read_training_trips(path), target.actual)
    if trips.empty:
        raise BadInputFile(path, f"no trips with a {target.actual} to compare {target.name} models on")
    columns = (*(trips[c].to_numpy() for c in ID_COLUMNS), trips["trip_distance"].to_numpy(dtype=np.float64))
    actual = trips[target.actual].to_numpy(dtype=np.float64)
    ours, theirs = champion.predict_columns(*columns), challenger.predict_columns(*columns)
    # Paired bootstrap: the same resampled trips for both models, so the interval is the difference's own.
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(actual), size=(BOOTSTRAP_SAMPLES, len(actual)), dtype=np.int32)
    champion_errors, challenger_errors = (ours - actual) ** 2, (theirs - actual) ** 2
    differences = np.sqrt(challenger_errors[samples].mean(axis=1)) - np.sqrt(champion_errors[samples].mean(axis=1))
    low, high = np.percentile(differences, [2.5, 97.5])
    return MonthComparison(
        path, actual, ours, theirs, _rmse(actual, ours), _rmse(actual, theirs), (float(low), float(high))
    )


def month_lines(month: MonthComparison, target: Target, champion_version: str, challenger_version: str) -> list[str]:
    low, high = month.interval
    return [
        f"on {month.path}, the {len(month.actual):,} trips training validates {target.name} on:",
        f"  champion   (version {champion_version}): RMSE {month.champion_rmse:.6f} {target.unit}",
        f"  challenger (version {challenger_version}): RMSE {month.challenger_rmse:.6f} {target.unit}",
        f"  challenger - champion: {month.difference:+.6f} {target.unit} (95% interval {low:+.6f} to {high:+.6f})",
    ]


def draw(
    target: Target, stream: StreamComparison | None, month: MonthComparison | None, path: Path, title: str
) -> Path:
    """A picture to look at rather than read: predicted against actual for both, and how far they disagree."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    import matplotlib.pyplot as plt

    panels = 2 * (month is not None) + (stream is not None and stream.compared > 0)
    figure, axes = plt.subplots(1, max(panels, 1), figsize=(5.5 * max(panels, 1), 4.8), squeeze=False)
    ax = iter(axes[0])
    unit = target.unit
    if month is not None:
        shown = np.random.default_rng(0).permutation(len(month.actual))[:PLOTTED_TRIPS]
        scatter = next(ax)
        for values, name, rmse in (
            (month.champion, "champion", month.champion_rmse),
            (month.challenger, "challenger", month.challenger_rmse),
        ):
            scatter.scatter(month.actual[shown], values[shown], s=4, alpha=0.35, label=f"{name} (RMSE {rmse:.3f})")
        top = float(np.percentile(month.actual, 99.5))
        scatter.plot([0, top], [0, top], color="black", linewidth=1, label="predicted = actual")
        scatter.set(xlim=(0, top), ylim=(0, top), xlabel=f"actual {target.name} ({unit})")
        scatter.set(ylabel=f"predicted ({unit})", title=f"{Path(month.path).name}: predicted vs actual")
        scatter.legend(loc="upper left", fontsize=8)
        errors = next(ax)
        bins = np.linspace(-3 * month.champion_rmse, 3 * month.champion_rmse, 61)
        for values, name in ((month.champion, "champion"), (month.challenger, "challenger")):
            errors.hist(values - month.actual, bins=bins, alpha=0.5, label=name)
        errors.set(xlabel=f"predicted - actual ({unit})", ylabel="trips", title="errors on the month")
        errors.legend(fontsize=8)
    if stream is not None and stream.compared > 0:
        live = next(ax)
        live.hist(stream.differences, bins=60, color="tab:purple")
        live.axvline(0, color="black", linewidth=1)
        live.set(xlabel=f"challenger - champion ({unit})", ylabel="rides")
        live.set(title=f"live rides: {stream.compared:,} answered by both")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
