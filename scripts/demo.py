"""The local demo: train the model if there is none, then stream rides through the handler.

``make demo-offline`` runs it without any AWS: the course's sample Kinesis event
and a few malformed records go through ``lambda_function.lambda_handler`` in
TEST_RUN mode, and the prediction and dead-letter events are printed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
DATA = ROOT / "data"
MODEL_URI_FILE = ROOT / "artifacts" / "MODEL_URI"


def trip_months() -> tuple[Path, Path]:
    """January and February 2021: the TLC files from ../shared, or generated look-alikes."""
    names = ("green_tripdata_2021-01.parquet", "green_tripdata_2021-02.parquet")
    if all((SHARED_DATA / n).exists() for n in names):
        return SHARED_DATA / names[0], SHARED_DATA / names[1]
    sys.path.insert(0, str(ROOT))
    from model_service.sample_data import make_trips

    DATA.mkdir(exist_ok=True)
    paths = (DATA / names[0], DATA / names[1])
    for path, start, seed in zip(paths, ("2021-01-01", "2021-02-01"), (1, 2), strict=True):
        if not path.exists():
            print(f"generating TLC-shaped trips in {path} (../shared/data is absent)")
            make_trips(60_000, seed=seed, start=start).to_parquet(path)
    return paths


def ensure_model() -> str:
    """The MODEL_URI of the last model trained here, training one first if there is none."""
    if MODEL_URI_FILE.exists():
        return MODEL_URI_FILE.read_text().strip()
    train, val = trip_months()
    print(f"training on {train.name}, validating on {val.name} ...", flush=True)
    out = subprocess.run(
        [sys.executable, "-m", "model_service", "train", "--train", str(train), "--val", str(val)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    print(out, end="")
    uri = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("MODEL_URI="))
    MODEL_URI_FILE.parent.mkdir(exist_ok=True)
    MODEL_URI_FILE.write_text(uri + "\n")
    return uri


def offline(model_uri: str) -> None:
    os.environ.update({"MODEL_URI": model_uri, "TEST_RUN": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    import lambda_function

    rides = [
        {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 256},
        {"ride": {"PULocationID": 10, "DOLocationID": 50, "trip_distance": 40}, "ride_id": 257},
        {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": -1}, "ride_id": 258},
        "this is not JSON",
    ]
    records = []
    for i, ride in enumerate(rides):
        data = ride.encode() if isinstance(ride, str) else json.dumps(ride).encode()
        sequence = str(49630081666084879290581185630324770398608704880802529282 + i)
        records.append(
            {
                "kinesis": {
                    "partitionKey": str(i),
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(data).decode(),
                },
                "eventID": f"shardId-000000000000:{sequence}",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/ride_events",
            }
        )

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "demo", 1024, "demo"
        invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:demo"

    response = lambda_function.lambda_handler({"Records": records}, Context())
    print(f"\nmodel {model_uri} (version {lambda_function.service.version})")
    for event in response["predictions"]:
        print(f"  prediction  ride {event['prediction']['ride_id']}: {event['prediction']['ride_duration']:.2f} min")
    for event in response["dead_letters"]:
        print(f"  dead letter seq ...{event['source']['sequence_number'][-4:]}: {event['reason']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("train", "offline"))
    args = parser.parse_args()
    model_uri = ensure_model()
    if args.mode == "offline":
        offline(model_uri)
    else:
        print(f"MODEL_URI={model_uri}")


if __name__ == "__main__":
    main()
