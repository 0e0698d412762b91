"""What encryption at rest costs: reading a stored dataset encrypted (mlplatform.encryption's chunked
AES-GCM reader, the path every dataset read takes when a key is configured) against the plain Parquet file.

    .venv/bin/python bench/encryption.py                 # 2,000,000 rows x 12 columns
    .venv/bin/python bench/encryption.py --rows 500000

Writes a synthetic table as Parquet (row groups like a stored dataset), encrypts it, then in a fresh
subprocess each: reads 3 of the 12 columns, and the whole table, from the plain file (pyarrow's own file
reader) and from the encrypted one (the decrypting reader, one 1 MiB chunk in memory). Reported: seconds,
peak resident memory of the subprocess (VmHWM) and the ratio encrypted / plain; plus the encryption
throughput. The point to check: memory stays that of the table read, not the file size on top of it.
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
import json, sys, time
sys.path.insert(0, sys.argv[1])
import pandas as pd

def peak_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

path, mode, columns, key = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
started = time.perf_counter()
if mode == "plain":
    frame = pd.read_parquet(path, columns=columns)
else:
    from mlplatform.encryption import DecryptingReader, parse_key
    with DecryptingReader(open(path, "rb"), [parse_key(key)], name="datasets/bench.parquet") as reader:
        frame = pd.read_parquet(reader, columns=columns, pre_buffer=False)  # as mlplatform.filestore.read_frame
print(json.dumps({"seconds": time.perf_counter() - started, "peak_mb": peak_mb(), "rows": len(frame)}))
"""


def build(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"n{i}": rng.normal(size=rows) for i in range(9)})
    for i, k in enumerate((5, 50, 500)):
        frame[f"c{i}"] = rng.choice([f"value-{j}" for j in range(k)], size=rows)
    frame.to_parquet(path, row_group_size=131_072, index=False)


def measure(path: Path, mode: str, columns, key: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(REPO), str(path), mode, json.dumps(columns), key],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from mlplatform.encryption import encrypt_stream, generate_key, parse_key

    key = generate_key()
    with tempfile.TemporaryDirectory() as folder:
        plain, sealed = Path(folder) / "plain.parquet", Path(folder) / "sealed.bin"
        build(plain, args.rows)
        started = time.perf_counter()
        with open(plain, "rb") as source, open(sealed, "wb") as sink:
            encrypt_stream(source, sink, parse_key(key), name="datasets/bench.parquet")
        seconds = time.perf_counter() - started
        size_mb = os.path.getsize(plain) / 2**20
        print(f"{args.rows:,} rows, Parquet file {size_mb:,.1f} MB; encrypted in {seconds:.2f} s "
              f"({size_mb / seconds:,.0f} MB/s), {os.path.getsize(sealed) - os.path.getsize(plain):,} bytes added")
        for label, columns in (("3 of 12 columns", ["n0", "n5", "c2"]), ("whole table", None)):
            bare = measure(plain, "plain", columns, key)
            ours = measure(sealed, "encrypted", columns, key)
            assert bare["rows"] == ours["rows"] == args.rows
            print(f"{label:>16}: plain {bare['seconds']:.2f} s, {bare['peak_mb']:,.0f} MB peak | encrypted "
                  f"{ours['seconds']:.2f} s, {ours['peak_mb']:,.0f} MB peak | ratio time "
                  f"{ours['seconds'] / bare['seconds']:.2f}x, memory {ours['peak_mb'] / bare['peak_mb']:.2f}x")


if __name__ == "__main__":
    main()
