"""Baseline for bench/web_bench.py: the course's web service, rewritten to behave the same.

Source: DataTalksClub/mlops-zoomcamp, 04-deployment/web-service/predict.py. As
there, the (DictVectorizer, model) pickle ``lin_reg.bin`` is loaded from the
working directory at import, each request is one ride whose features are
``PU_DO`` and ``trip_distance``, and it is served by
``gunicorn --bind=0.0.0.0:9696 predict:app`` (gunicorn's default: one sync worker).
No validation: a bad ride is a 500, as in the course.
"""

import pickle

from flask import Flask, jsonify, request

with open("lin_reg.bin", "rb") as model_file:
    dv, model = pickle.load(model_file)

app = Flask("duration-prediction")


@app.route("/predict", methods=["POST"])
def predict_endpoint():
    ride = request.get_json()
    features = {"PU_DO": f"{ride['PULocationID']}_{ride['DOLocationID']}", "trip_distance": ride["trip_distance"]}
    prediction = model.predict(dv.transform(features))
    return jsonify({"duration": float(prediction[0])})
