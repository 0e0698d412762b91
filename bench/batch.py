"""Throughput and peak memory of predict_batch against the bare library doing the same job.

    .venv/bin/python bench/batch.py                 # 1,000,000 rows
    .venv/bin/python bench/batch.py --rows 200000

Builds a synthetic table (16 numeric columns, 4 categorical, a yes/no target) as a
Parquet file shaped like a stored dataset, fits the platform's random forest pipeline
(100 trees, n_jobs=2) on a 50,000-row sample, saves it with the platform's artifact
format, then runs each contender in a fresh subprocess:

- ours: ``predict_batch`` (Parquet in chunks -> model -> CSV with row, prediction, probabilities),
  with the fitted pipeline as the model (``--engine native`` / ``onnx``: the serving layer's
  predictors instead);
- bare: ``pd.read_parquet`` of the feature columns, ``pipeline.predict_proba`` on all rows,
  labels by argmax and ``DataFrame.to_csv`` of the same columns.

Reported: rows per second of the work (model loading excluded from both) and the
subprocess's peak resident memory (VmHWM), which includes the loaded model.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_NUMERIC, CATEGORIES = 16, {"colour": 6, "region": 12, "plan": 4, "shop": 300}
TRAIN_ROWS = 50_000

CHILD = r"""
import json, sys, time
import numpy as np

def peak_kb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child would
    # report the parent's peak (the parent has held the whole table while fitting).
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

mode, source, model_path, out, chunk_rows, engine = sys.argv[1:7]
meta = json.load(open(model_path + ".json"))
from training.ml.artifacts import load_pipeline
pipeline = load_pipeline(open(model_path, "rb").read())
features = [c["name"] for c in meta["feature_schema"]]
classes = np.asarray(meta["classes"], dtype=object)

class PipelinePredictor:
    problem_type, classes, input_columns, engine = "binary", meta["classes"], features, "sklearn"
    def predict(self, frame):
        proba = pipeline.predict_proba(frame)
        return classes[proba.argmax(axis=1)], proba

if mode == "ours":
    from training.ml.batch import predict_batch
    if engine == "pipeline":
        predictor = PipelinePredictor()
    else:  # what the serving layer hands a batch job (the native one runs its model on one thread)
        from training.ml.onnx_export import build_predictor
        onnx_bytes = open(model_path + ".onnx", "rb").read() if engine == "onnx" else None
        predictor = build_predictor(pipeline=pipeline, onnx_bytes=onnx_bytes, problem_type="binary",
                                    classes=meta["classes"], input_columns=features)
        assert predictor.engine == engine, predictor.engine
else:
    import pandas as pd
base = peak_kb()
started = time.perf_counter()
if mode == "ours":
    rows = predict_batch(source, predictor, out, feature_schema=meta["feature_schema"],
                         chunk_rows=int(chunk_rows))["rows"]
else:
    frame = pd.read_parquet(source, columns=features)
    proba = pipeline.predict_proba(frame)
    output = pd.DataFrame({"row": np.arange(1, len(frame) + 1), "prediction": classes[proba.argmax(axis=1)],
                           **{f"proba_{c}": proba[:, k] for k, c in enumerate(meta["classes"])}})
    output.to_csv(out, index=False)
    rows = len(frame)
seconds = time.perf_counter() - started
peak = peak_kb()
print(json.dumps({"rows": rows, "seconds": seconds, "peak_kb": peak, "base_kb": base}))
"""


def write_dataset(path: Path, rows: int) -> None:
    """Write ``rows`` rows in 100,000-row pieces, in row groups like an ingested dataset."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from training.ml.ingest import ROW_GROUP_ROWS

    rng = np.random.default_rng(0)
    weights = rng.normal(0, 1, N_NUMERIC)
    effects = {name: rng.normal(0, 1, n) for name, n in CATEGORIES.items()}
    writer = None
    piece = 100_000
    for start in range(0, rows, piece):
        n = min(piece, rows - start)
        numbers = rng.normal(0, 1, (n, N_NUMERIC))
        score = numbers @ weights * 0.5
        columns = {}
        for i in range(N_NUMERIC):
            values = numbers[:, i].round(4)
            columns[f"x{i:02d}"] = pa.array(values, mask=rng.random(n) < 0.03)
        for name, n_categories in CATEGORIES.items():
            codes = rng.integers(0, n_categories, n)
            score += effects[name][codes]
            columns[name] = pa.array(np.char.add(f"{name}_", codes.astype(str)))
        score += rng.normal(0, 1.5, n)
        columns["churn"] = pa.array(np.where(score > 0, "yes", "no"))
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="snappy")
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
    writer.close()


def fit_model(source: Path, model_path: Path, *, onnx: bool) -> dict:
    """The trainer's pipeline (its preprocessing plan and its random forest) fitted on a sample."""
    import pandas as pd

    from training.ml.algorithms import get_algorithm
    from training.ml.artifacts import dump_pipeline
    from training.ml.columns import column_schema
    from training.ml.jsonable import plain
    from training.ml.preprocess import plan_preprocessing
    from training.ml.problem import ProblemType
    from training.ml.search import build_pipeline

    frame = pd.read_parquet(source)
    frame = frame.sample(min(TRAIN_ROWS, len(frame)), random_state=0)
    X, y = frame.drop(columns="churn"), frame["churn"]
    algorithm = get_algorithm("random_forest")
    plan = plan_preprocessing(X, scale_numeric=algorithm.needs_scaling)
    estimator = algorithm.build(ProblemType.BINARY, {"n_estimators": 100}, n_threads=2, random_state=0)
    pipeline = build_pipeline(plan.transformer, estimator).fit(X[plan.used_columns], y)
    model_path.write_bytes(dump_pipeline(pipeline))
    if onnx:
        from training.ml.onnx_export import export_onnx

        Path(f"{model_path}.onnx").write_bytes(export_onnx(pipeline, X[plan.used_columns], problem_type="binary",
                                                           classes=plain(pipeline.classes_)))
    meta = {"classes": plain(pipeline.classes_),
            "feature_schema": [column_schema(X[c], plan.kinds[c]) for c in plan.used_columns]}
    Path(f"{model_path}.json").write_text(json.dumps(meta))
    return meta


def run_child(mode: str, source: Path, model_path: Path, out: Path, chunk_rows: int, engine: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", CHILD, mode, str(source), str(model_path), str(out), str(chunk_rows), engine]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each contender, alternating; best kept")
    parser.add_argument("--engine", choices=("pipeline", "native", "onnx"), default="pipeline",
                        help="model behind predict_batch: the fitted pipeline as trained (n_jobs=2, like the "
                             "baseline), or the serving layer's native (one thread) or ONNX predictor")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp)
        source, model_path = folder / "data.parquet", folder / "model.skops"
        started = time.perf_counter()
        write_dataset(source, args.rows)
        print(f"dataset: {args.rows:,} rows x {N_NUMERIC + len(CATEGORIES)} features, "
              f"{source.stat().st_size / 2**20:.1f} MB Parquet ({time.perf_counter() - started:.1f}s)")
        started = time.perf_counter()
        fit_model(source, model_path, onnx=args.engine == "onnx")
        print(f"model: random forest, 100 trees, fitted on {min(TRAIN_ROWS, args.rows):,} rows ({time.perf_counter() - started:.1f}s), "
              f"{model_path.stat().st_size / 2**20:.1f} MB saved")

        # Alternate the contenders so that load from other processes hits both alike; keep each one's best.
        results: dict[str, dict] = {}
        for attempt in range(args.repeat):
            for mode in ("ours", "bare"):
                out = folder / f"{mode}.csv"
                result = run_child(mode, source, model_path, out, args.chunk_rows, args.engine)
                label = f"ours ({args.engine})" if mode == "ours" else "bare"
                if "error" in result:
                    print(f"{label:>15}: failed: {result['error']}")
                    results[mode] = result
                    continue
                result["csv_mb"] = out.stat().st_size / 2**20
                out.unlink()
                print(f"{label:>15}: {result['rows'] / result['seconds']:>9,.0f} rows/s ({result['seconds']:.1f}s), "
                      f"peak RSS {result['peak_kb'] / 1024:,.0f} MB (after imports and model: "
                      f"{result['base_kb'] / 1024:,.0f} MB), CSV {result['csv_mb']:.1f} MB")
                best = results.get(mode)
                if best is None or "error" in best or result["seconds"] < best["seconds"]:
                    results[mode] = {**result, "peak_kb": max(result["peak_kb"], (best or {}).get("peak_kb", 0))}
        ours, bare = results["ours"], results["bare"]
        if "error" not in ours and "error" not in bare:
            ratio = (ours["rows"] / ours["seconds"]) / (bare["rows"] / bare["seconds"])
            print(f"best of {args.repeat}: ours {ours['rows'] / ours['seconds']:,.0f} rows/s, peak "
                  f"{ours['peak_kb'] / 1024:,.0f} MB; bare {bare['rows'] / bare['seconds']:,.0f} rows/s, peak "
                  f"{bare['peak_kb'] / 1024:,.0f} MB")
            print(f"throughput ours / bare: {ratio:.2f}x (goal >= 0.7); peak memory ours / bare: "
                  f"{ours['peak_kb'] / bare['peak_kb']:.2f}x (goal: ours <= 1.5 GB)")

if __name__ == "__main__":
    main()
