"""Baseline for bench/lambda_bench.py: the course's Kinesis handler, rewritten to behave the same.

Source: DataTalksClub/mlops-zoomcamp, 06-best-practices/code/model.py
(``ModelService.lambda_handler`` with TEST_RUN, i.e. no callbacks). As there,
each record is base64-decoded and JSON-parsed on its own, its features are
built with ``'%s_%s'`` formatting, and the model is called once per ride. The
course's model is an MLflow pyfunc around the same DictVectorizer + regressor;
here the (DictVectorizer, model) tuple is called directly, which only makes
this baseline faster than the course's.
"""

import base64
import json


class CourseModelService:
    def __init__(self, vectorizer, regressor, model_version):
        self.vectorizer = vectorizer
        self.regressor = regressor
        self.model_version = model_version

    def prepare_features(self, ride):
        return {
            "PU_DO": "%s_%s" % (ride["PULocationID"], ride["DOLocationID"]),  # noqa: UP031 - as the course writes it
            "trip_distance": ride["trip_distance"],
        }

    def predict(self, features):
        return float(self.regressor.predict(self.vectorizer.transform(features))[0])

    def lambda_handler(self, event):
        predictions = []
        for record in event["Records"]:
            ride_event = json.loads(base64.b64decode(record["kinesis"]["data"]).decode("utf-8"))
            prediction = self.predict(self.prepare_features(ride_event["ride"]))
            predictions.append(
                {
                    "model": "ride_duration_prediction_model",
                    "version": self.model_version,
                    "prediction": {"ride_duration": prediction, "ride_id": ride_event["ride_id"]},
                }
            )
        return {"predictions": predictions}
