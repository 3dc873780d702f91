"""Diagnosis benchmark: inject known failures into real data, run the real monitor pass, compare the diagnosis.

Data: scikit-learn's bundled breast cancer set (569 biopsies, 8 of its 30 measurements). A logistic regression is
trained on half and registered with Watchtower (ONNX); each scenario then sends a window of the other half through
the events API (features, the model's prediction and class probabilities, labels, latency) with one failure
injected, runs `watchtower.monitor.run_monitor` (drift, prediction drift, missing values, accuracy, estimated
accuracy, schema, latency, id-joined skew) and takes the most confident root-cause tag of the incident it opened.
The table counts suggested (columns) against injected (rows) root causes over `--repeats` seeds.

    .venv/bin/python bench/diagnosis_bench.py                 # 9 scenarios x 3 seeds, about a minute
    .venv/bin/python bench/diagnosis_bench.py --repeats 1     # quick
"""

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sklearn.datasets import load_breast_cancer
from sqlmodel import Session

from postmortems.taxonomy import ensure_builtin, load_index
from watchtower.app import create_app
from watchtower.db import make_engine, migrate
from watchtower.modelkit import tensor_classifier
from watchtower.monitor import run_monitor
from watchtower.settings import Settings

TOKEN = "bench-token"
COLUMNS = {"mean radius": "mean_radius", "mean texture": "mean_texture", "mean smoothness": "mean_smoothness",
           "mean concavity": "mean_concavity", "mean symmetry": "mean_symmetry", "worst area": "worst_area",
           "worst smoothness": "worst_smoothness", "worst concave points": "worst_concave_points"}
FEATURES = list(COLUMNS.values())
ROWS = 300  # events per window
DETECTORS = [{"name": "native_drift"}, {"name": "prediction_drift"}, {"name": "missing_values"},
             {"name": "accuracy", "params": {"min_labels": 50}}, {"name": "estimated_accuracy"},
             {"name": "schema_mismatch"}, {"name": "latency", "params": {"max_ms": 250}},
             {"name": "feature_skew"}]
# Tag -> the root-cause class the table counts (a child counts as its signature's class).
CLASS_OF = {"categorical-encoding-mismatch": "training-serving-skew", "missing-or-broken-feature": "broken-join",
            "data-pipeline-failure": "broken-join", "infrastructure-reliability": "serving-infrastructure"}


@dataclass
class Window:
    """What one scenario sends: the features as served, the inputs the model saw, labels, latency, stage log."""

    served: pd.DataFrame
    seen: pd.DataFrame
    labels: np.ndarray
    latency: np.ndarray
    stage: pd.DataFrame | None = None


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference half and serving pool of the breast cancer data, label 1 = benign."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=COLUMNS)[[*FEATURES, "target"]].rename(columns={"target": "label"})
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return shuffled.iloc[:285].reset_index(drop=True), shuffled.iloc[285:].reset_index(drop=True)


def draw(pool: pd.DataFrame, rng: np.random.Generator, weights: np.ndarray | None = None) -> Window:
    """ROWS biopsies from the pool (1% measurement jitter so resampled rows are not exact copies)."""
    picked = pool.sample(ROWS, replace=True, weights=weights, random_state=rng.integers(1 << 31))
    served = picked[FEATURES].reset_index(drop=True) * rng.normal(1.0, 0.01, (ROWS, len(FEATURES)))
    return Window(served, served.copy(), picked["label"].to_numpy(), rng.gamma(4.0, 10.0, ROWS))


def healthy(w: Window, rng: np.random.Generator) -> None:
    """Nothing wrong."""


def seasonal(w: Window, rng: np.random.Generator) -> None:
    """Every measurement reads a bit higher (a new scanner calibration for the season): many features move."""
    for df in (w.served, w.seen):
        df[FEATURES] = df[FEATURES] * 1.06


def unit_change(w: Window, rng: np.random.Generator) -> None:
    """worst_area arrives in cm² instead of mm² (÷100), and the model sees it so."""
    for df in (w.served, w.seen):
        df["worst_area"] = df["worst_area"] / 100


def skew(w: Window, rng: np.random.Generator) -> None:
    """Training logged mean_texture as computed offline; serving computes it with a different smoothing."""
    w.stage = w.served.copy()
    for df in (w.served, w.seen):
        df["mean_texture"] = df["mean_texture"] * rng.normal(1.15, 0.05, ROWS)


def broken_join(w: Window, rng: np.random.Generator) -> None:
    """The join that brings mean_concavity fails for most rows, which then get the default 0."""
    lost = rng.random(ROWS) < 0.85
    for df in (w.served, w.seen):
        df.loc[lost, "mean_concavity"] = 0.0


def concept_drift(w: Window, rng: np.random.Generator) -> None:
    """The labelling guideline changed: a third of the borderline and clear cases alike get the other label."""
    flipped = rng.random(ROWS) < 0.35
    w.labels = np.where(flipped, 1 - w.labels, w.labels)


def prediction_shift(w: Window, rng: np.random.Generator) -> None:
    """A preprocessing change before the model: it sees mean_radius and worst_area 40% larger; the log does not."""
    w.seen[["mean_radius", "worst_area"]] = w.seen[["mean_radius", "worst_area"]] * 1.4


def latency(w: Window, rng: np.random.Generator) -> None:
    """An overloaded serving backend: the model and its inputs are fine, responses take ~600 ms."""
    w.latency = rng.gamma(6.0, 100.0, ROWS)


# scenario -> (injection, how rows are drawn (None: uniformly), true root cause)
SCENARIOS: dict[str, tuple[Callable[[Window, np.random.Generator], None], str | None, str]] = {
    "healthy": (healthy, None, "none"), "seasonal": (seasonal, None, "covariate-shift"),
    "covariate shift": (healthy, "large", "covariate-shift"), "concept drift": (concept_drift, None, "concept-drift"),
    "unit change": (unit_change, None, "unit-change"), "skew": (skew, None, "training-serving-skew"),
    "broken join": (broken_join, None, "broken-join"),
    "prediction shift": (prediction_shift, None, "model-or-preprocessing-change"),
    "latency": (latency, None, "serving-infrastructure"),
}


def scenario_window(pool: pd.DataFrame, name: str, seed: int) -> Window:
    inject, draw_from, _ = SCENARIOS[name]
    rng = np.random.default_rng(seed)
    weights = None
    if draw_from == "large":  # selection: more large tumours referred; P(label | measurements) is unchanged
        z = (pool["worst_area"] - pool["worst_area"].mean()) / pool["worst_area"].std()
        weights = np.exp(1.2 * z).to_numpy()
    w = draw(pool, rng, weights)
    inject(w, rng)
    return w


def send(client: TestClient, model: str, estimator: Any, w: Window) -> None:
    """Events (features as served, the model's answer on what it saw), the stage log, then the labels."""
    proba = estimator.predict_proba(w.seen[FEATURES].to_numpy(np.float32))
    ids = [f"{model}-{i}" for i in range(ROWS)]
    events = [{"id": i, "features": {f: float(v) for f, v in row.items()}, "prediction": int(p.argmax()),
               "scores": {"0": float(p[0]), "1": float(p[1])}, "latency_ms": float(ms)}
              for i, row, p, ms in zip(ids, w.served.to_dict("records"), proba, w.latency, strict=True)]
    assert client.post(f"/models/{model}/events", json={"events": events}).status_code == 200
    if w.stage is not None:
        rows = [{"id": i, "features": r} for i, r in zip(ids, w.stage.to_dict("records"), strict=True)]
        assert client.post(f"/models/{model}/stages/training/features", json={"rows": rows}).status_code == 200
    labels = [{"id": i, "label": int(y)} for i, y in zip(ids, w.labels, strict=True)]
    assert client.post(f"/models/{model}/labels", json={"labels": labels}).status_code == 200


def diagnosed(client: TestClient, incident_id: int | None, root_causes: set[str]) -> tuple[str, str]:
    """The most confident root cause of the incident (as its class) and its reason; ('none', '') without one."""
    if incident_id is None:
        return "none", ""
    tags = [t for t in client.get(f"/incidents/{incident_id}").json()["tags"]
            if t["tag"] in root_causes and t["score"] is not None]
    if not tags:
        return "none", ""
    top = max(tags, key=lambda t: t["score"])
    return CLASS_OF.get(top["tag"], top["tag"]), top["reason"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="seeds per scenario")
    parser.add_argument("--verbose", action="store_true", help="print every diagnosis with its reason")
    args = parser.parse_args()
    reference, pool = load()
    built = tensor_classifier(reference[FEATURES], reference["label"], simple=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        settings = Settings(database_url=url, api_token=SecretStr(TOKEN), scheduler_enabled=False,
                            min_window_events=50, slack_token=None, allowed_hosts="testserver")
        engine = make_engine(url)
        migrate(engine)
        with Session(engine) as session:
            ensure_builtin(session)
            session.commit()
        with TestClient(create_app(settings, engine), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            policy = {"grouping": "model", "rules": [{"name": "any-breach", "actions": ["open_incident"]}]}
            assert client.put("/policy", json=policy).status_code == 200
            runtime = client.app.state.runtime  # type: ignore[attr-defined]
            with Session(engine) as session:
                index = load_index(session)
            root_causes = {k for k in index.nodes if index.is_root_cause(k) and not k.startswith("hmb-")}
            table: Counter[tuple[str, str]] = Counter()
            for name, (_, _, truth) in SCENARIOS.items():
                for seed in range(args.repeats):
                    model = f"{name.replace(' ', '-')}-{seed}"
                    spec = {"name": model, "task": "classification", "target": "label",
                            "features": [{"name": f, "type": "numeric"} for f in FEATURES],
                            "monitors": [{"detectors": DETECTORS, "min_events": 100}]}
                    registered = client.post("/models", data={"spec": json.dumps(spec)}, files={
                        "primary": ("p.onnx", built.onnx), "fallback": ("f.onnx", built.onnx),
                        "reference": ("reference.csv", reference.to_csv(index=False).encode())})
                    assert registered.status_code == 201, registered.text
                    send(client, model, built.estimator, scenario_window(pool, name, 100 + seed))
                    result = run_monitor(runtime, model, "default")
                    suggested, reason = diagnosed(client, result.incident_id, root_causes)
                    table[truth, suggested] += 1
                    if args.verbose:
                        print(f"{name:>17} seed {seed}: {suggested:<30} {reason}")
        engine.dispose()
    print_table(table, time.perf_counter() - started, args.repeats)


def print_table(table: Counter[tuple[str, str]], seconds: float, repeats: int) -> None:
    truths = list(dict.fromkeys(truth for _, _, truth in SCENARIOS.values()))
    columns = truths + sorted({s for _, s in table} - set(truths))
    short = {c: c.replace("model-or-preprocessing-change", "model-change").replace("training-serving-skew", "skew")
             .replace("serving-infrastructure", "infra") for c in columns}
    width = max(len(short[c]) for c in columns) + 1
    corner = "injected \\ suggested"
    print(f"{corner:>22}" + "".join(f"{short[c]:>{width}}" for c in columns))
    for truth in truths:
        print(f"{short[truth]:>22}" + "".join(f"{table[truth, c] or '.':>{width}}" for c in columns))
    right = sum(n for (t, s), n in table.items() if t == s)
    print(f"{right}/{sum(table.values())} diagnosed right ({repeats} seed(s) per scenario; 'seasonal' is counted as "
          f"covariate-shift), {seconds:.0f} s")


if __name__ == "__main__":
    main()
