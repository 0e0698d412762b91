"""Peak memory and time of ingest_to_parquet against a bare pandas read_csv + to_parquet.

    .venv/bin/python bench/ingest_memory.py --mb 500

Writes a CSV of about --mb megabytes (numbers, categories, quoted free text with commas,
dates, booleans, missing values; with --drift, a column that turns from numbers to text
in its last rows) into a temporary directory, then runs each contender in a fresh
subprocess and reports the subprocess's peak resident memory (ru_maxrss) and its growth
over the memory the process had after its imports.

With --drift the bare pandas baseline fails (read_csv reads the column in chunks of
mixed types, to_parquet refuses it), which is the point of the two-pass type settling.
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

CHILD = r"""
import json, resource, sys, time
mode, src, dest = sys.argv[1:4]
if mode == "ours":
    from training.ml.ingest import ingest_to_parquet
else:
    import pandas as pd
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if mode == "ours":
    result = ingest_to_parquet(src, dest, filename="bench.csv", max_bytes=1 << 40)
    rows = result.rows
else:
    frame = pd.read_csv(src)
    frame.to_parquet(dest)
    rows = len(frame)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "seconds": seconds, "peak_kb": peak, "base_kb": base}))
"""


def write_csv(path: Path, megabytes: float, *, drift: bool) -> int:
    """Append 100,000-row chunks until the file reaches the size asked for."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    target = int(megabytes * 2**20)
    rng = np.random.default_rng(0)
    colors = np.array(["red", "green", "blue", "yellow", "black", "white"])
    words = np.array("the quick brown fox jumps over a lazy dog, again and again".split())
    rows = size = 0
    n = 100_000
    with open(path, "wb") as out:
        while size < target:
            text = [" ".join(words[rng.integers(0, len(words), 8)]) for _ in range(n)]
            maybe = rng.integers(0, 1_000, n).astype(str).astype(object)
            if drift and size > target * 0.9:  # numbers for 90% of the file, then some text
                maybe[rng.random(n) < 0.01] = "unknown"
            table = pa.table({
                "id": pa.array(np.arange(rows, rows + n)),
                "age": pa.array(rng.integers(18, 90, n)),
                "income": pa.array(rng.normal(50_000, 15_000, n).round(2), mask=rng.random(n) < 0.05),
                "score": pa.array(rng.random(n).round(5)),
                "color": pa.array(colors[rng.integers(0, len(colors), n)]),
                "city": pa.array(np.char.add("city_", rng.integers(0, 2_000, n).astype(str))),
                "comment": pa.array(text),
                "signup": pa.array(np.datetime64("2015-01-01") + rng.integers(0, 3_000, n)),
                "active": pa.array(rng.random(n) < 0.3),
                "maybe_number": pa.array(maybe.tolist(), pa.string()),
            })
            buffer = io.BytesIO()
            pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=rows == 0))
            size += out.write(buffer.getvalue())
            rows += n
    return rows


def run_child(mode: str, src: Path, dest: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(src), str(dest)],
                          capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=500, help="size of the generated CSV in MB")
    parser.add_argument("--drift", action="store_true",
                        help="make one numeric column turn to text in the last 10%% of the rows")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    try:
        src = workdir / "bench.csv"
        started = time.perf_counter()
        rows = write_csv(src, args.mb, drift=args.drift)
        size_mb = src.stat().st_size / 2**20
        print(f"generated {size_mb:.0f} MB, {rows:,} rows in {time.perf_counter() - started:.0f} s")

        results = {}
        for mode in ("ours", "pandas"):
            results[mode] = run_child(mode, src, workdir / f"{mode}.parquet")
            r = results[mode]
            if "error" in r:
                print(f"{mode:>7}: failed: {r['error']}")
                continue
            print(f"{mode:>7}: {r['seconds']:6.1f} s   peak RSS {r['peak_kb'] / 1024:7.0f} MB   "
                  f"growth {(r['peak_kb'] - r['base_kb']) / 1024:7.0f} MB   rows {r['rows']:,}")
        ours, bare = results["ours"], results["pandas"]
        if "error" in ours or "error" in bare:
            return
        print(f"peak RSS ours / pandas: {ours['peak_kb'] / bare['peak_kb']:.2f}   "
              f"growth ours / pandas: {(ours['peak_kb'] - ours['base_kb']) / (bare['peak_kb'] - bare['base_kb']):.2f}   "
              f"time ours / pandas: {ours['seconds'] / bare['seconds']:.2f}")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            for path in workdir.iterdir():
                path.unlink()
            workdir.rmdir()


if __name__ == "__main__":
    main()
