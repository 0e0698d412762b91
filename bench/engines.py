"""Which engine each prediction route should use: ONNX Runtime or the native pipeline, measured per algorithm.

    .venv/bin/python bench/engines.py                     # 200,000 rows, about 3 minutes on 2 cores
    .venv/bin/python bench/engines.py --rows 1000000 --algorithms random_forest

For each algorithm it fits the platform's pipeline on 20,000 rows of ``bench/batch.py``'s synthetic table
(16 numeric and 4 categorical columns, a yes/no target), exports its ONNX graph and measures, in this process:

- one record, the real-time route: median latency of ``OnnxPredictor.predict_records`` (what serving does with a
  checked record) and of ``NativePredictor.predict`` on a one-row frame;
- a whole table, the batch and evaluation routes: rows per second of each engine over ``--rows`` rows in
  50,000-row chunks, the native pipeline with the job's threads (``--threads``), ONNX on one thread as it serves.

It prints both, the ratio, and the engine the numbers pick for each route. Parity of the two engines is checked
on the way (``onnx_export.check_parity``): a route may only switch engine when both give the same answers.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN_ROWS = 20_000
CHUNK_ROWS = 50_000
PARAMS = {"random_forest": {"n_estimators": 100}, "xgboost": {"n_estimators": 100},
          "hist_gradient_boosting": {"max_iter": 100}, "logistic_regression": {}}


def _median_us(fn, repeat: int) -> float:
    fn()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e6


def _rows_per_second(predictor, frame, chunk_rows: int = CHUNK_ROWS) -> float:
    started = time.perf_counter()
    for start in range(0, len(frame), chunk_rows):
        predictor.predict(frame.iloc[start:start + chunk_rows])
    return len(frame) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=2, help="threads of the native pipeline over a table")
    parser.add_argument("--repeat", type=int, default=300, help="one-record calls per engine")
    parser.add_argument("--algorithms", default=",".join(PARAMS))
    parser.add_argument("--table-runs", type=int, default=3,
                        help="passes over the table per engine, alternating; the best is kept (load from other "
                             "processes hits both alike)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "bench"))

    import pandas as pd

    from batch import write_dataset
    from training.ml.threads import job_threads

    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        source = Path(tmp) / "data.parquet"
        write_dataset(source, max(args.rows, TRAIN_ROWS))
        frame = pd.read_parquet(source)
    table, sample = frame.head(args.rows), frame.sample(TRAIN_ROWS, random_state=0)
    print(f"{args.rows:,} rows to predict; models fitted on {TRAIN_ROWS:,}; native pipeline on {args.threads} "
          f"thread(s) over tables, ONNX on 1\n")
    header = (f"{'algorithm':<24}{'1 record: onnx':>16}{'native':>12}{'ratio':>8}   "
              f"{'table: native':>15}{'onnx':>12}{'ratio':>8}   parity")
    print(header)
    print("-" * len(header))
    with job_threads(args.threads):  # OpenMP, BLAS and joblib at the job's threads, as a batch job runs
        _measure(args, table, sample)


def _measure(args, table, sample) -> None:
    import pandas as pd

    from training.ml.onnx_export import check_parity, export_onnx
    from training.ml.predictors import NativePredictor, OnnxPredictor
    from training.ml.records import RecordValidator
    from training.ml.trainer import TrainConfig, train

    for key in args.algorithms.split(","):
        result = train(sample, TrainConfig(target="churn", algorithm=key, params=PARAMS.get(key, {}), cv_folds=2,
                                           n_threads=args.threads))
        columns = result.used_columns
        onnx_bytes = export_onnx(result.pipeline, result.test_frame[columns], problem_type="binary",
                                 classes=result.classes)
        parity = check_parity(result.pipeline, onnx_bytes, result.test_frame, problem_type="binary",
                              classes=result.classes)
        onnx = OnnxPredictor(onnx_bytes, "binary", result.classes, columns)
        native = NativePredictor(result.pipeline, "binary", result.classes, columns)
        validator = RecordValidator(result.feature_schema)
        record = {k: (None if pd.isna(v) else v) for k, v in table[columns].iloc[0].to_dict().items()}
        one_frame, _ = validator.to_frame([record], max_records=1)
        onnx_one = _median_us(lambda: onnx.predict_records([record]), args.repeat)
        native_one = _median_us(lambda: native.predict(one_frame), args.repeat)
        rows = table[columns]
        native_table = NativePredictor(result.pipeline, "binary", result.classes, columns, n_threads=args.threads)
        native_rate = onnx_rate = 0.0
        for _ in range(args.table_runs):
            native_rate = max(native_rate, _rows_per_second(native_table, rows))
            onnx_rate = max(onnx_rate, _rows_per_second(onnx, rows))
        print(f"{key:<24}{onnx_one:>13,.0f} us{native_one:>9,.0f} us{native_one / onnx_one:>7.0f}x   "
              f"{native_rate:>11,.0f} r/s{onnx_rate:>8,.0f} r/s{native_rate / onnx_rate:>7.1f}x   "
              f"{'agree' if parity['agree'] else 'differ'} ({parity['max_abs_diff']:.1e})")
    print("\nreal-time: ONNX when it agrees (one record is many times faster); batch and evaluation: the native "
          "pipeline with the job's threads when its table ratio is above 1, as above.")


if __name__ == "__main__":
    main()
