"""Start-up of the generated gRPC client, `predict_grpc.py --help` (imports and argument parsing, no call).

The client declares the few TF Serving messages it sends (grpcio + protobuf + numpy); before, it imported
TensorFlow to build one TensorProto. ``--baseline FILE`` times another client file in the same run (e.g. an
older build's `serving/clients/predict_grpc.py`) so both figures share the machine's load.

    python benchmarks/bench_grpc_client.py [--runs 5] [--baseline OLD_CLIENT.py]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "digits" / "deploy.yaml"


def seconds(client: Path, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, str(client), "--help"], check=True, capture_output=True)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tfspec = Path(sys.executable).with_name("tfspec")
        subprocess.run([str(tfspec), "build", str(SPEC), "--out", folder], check=True, capture_output=True)
        clients = {"generated": Path(folder) / "serving" / "clients" / "predict_grpc.py"}
        if args.baseline is not None:
            clients["baseline"] = args.baseline
        print(f"load before: {os.getloadavg()[0]:.2f}")
        for name, client in clients.items():
            times = seconds(client, args.runs)
            print(f"{name:10s} median {statistics.median(times):.2f} s, min {min(times):.2f} s over {args.runs} runs")
        print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
