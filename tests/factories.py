"""Test data built the way production sees it: rides, and Lambda Kinesis events of any payload."""

from __future__ import annotations

import json
from typing import Any

from stream_tools import local_invoke
from stream_tools.producer import ride_event


def rides_from_trips(trips) -> list:
    """The trips of a TLC frame as validated rides, to compare the frame and ride paths."""
    from model_service.schema import validate_ride

    columns = (trips.PULocationID.tolist(), trips.DOLocationID.tolist(), trips.trip_distance.tolist())
    return [
        validate_ride({"PULocationID": pu, "DOLocationID": do, "trip_distance": dist})
        for pu, do, dist in zip(*columns, strict=True)
    ]


def ride_payload(ride_id: Any = 256, pu: Any = 130, do: Any = 205, distance: Any = 3.66) -> dict[str, Any]:
    """The course's sample ride, or one like it: the producer's builder, with defaults."""
    return ride_event(ride_id, pu, do, distance)


def encode(payload: Any) -> bytes:
    """JSON-encode dicts and lists; pass raw bytes and text through as they are."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload).encode()


def kinesis_event(payloads: list[Any]) -> dict[str, Any]:
    """A Lambda Kinesis event with one record per payload (dicts and lists JSON-encoded)."""
    return local_invoke.kinesis_event(encode(p) for p in payloads)


def raw_kinesis_event(datas: list[str]) -> dict[str, Any]:
    """Like kinesis_event, but ``data`` fields given verbatim (to send what is not base64)."""
    event = kinesis_event([b""] * len(datas))
    for record, data in zip(event["Records"], datas, strict=True):
        record["kinesis"]["data"] = data
    return event


def feature_columns(trips: Any) -> list[Any]:
    """A TLC frame's feature columns as the arrays a predictor takes: zone ids, zone ids, distances."""
    from model_service.model.features import FEATURE_COLUMNS

    return [trips[c].to_numpy() for c in FEATURE_COLUMNS]


class NanBeyond:
    """A predictor that answers NaN for rides longer than ``miles``: a model gone wrong away from its smoke test."""

    def __init__(self, predictor: Any, miles: float) -> None:
        self.predictor, self.miles = predictor, miles

    def predict(self, pu_location_id: Any, do_location_id: Any, trip_distance: Any) -> Any:
        import numpy as np

        values = np.array(self.predictor.predict(pu_location_id, do_location_id, trip_distance), dtype=np.float64)
        values[trip_distance > self.miles] = np.nan
        return values


def answering_nan_beyond(service: Any, miles: float = 100.0) -> Any:
    """``service`` with its model answering NaN past ``miles``, as a service loaded so would."""
    import dataclasses

    from model_service.service import PredictionService

    model = service._model
    return PredictionService(dataclasses.replace(model, predictor=NanBeyond(model.predictor, miles)))


class RunsCodeWhenUnpickled:
    """Unpickling this runs code: it creates ``target``, the evidence that a loader unpickled it."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.target), "w"))
