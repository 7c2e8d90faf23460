"""Baseline for bench/batch_bench.py: the course's batch job, rewritten to do the same work.

Source: DataTalksClub/mlops-zoomcamp, 04-deployment/batch/score.py. As there:
the whole month is read into pandas, trips outside 1 to 60 minutes are
dropped, each kept trip gets a uuid4 ride id, the zone ids are cast to str to
build ``PU_DO``, the features go through ``to_dict(orient="records")``, one
predict call scores the month, and the result frame is written with
``to_parquet``. Two changes: the model is a pickled (DictVectorizer, model)
tuple read from a path, where the course loads its DictVectorizer+model
pipeline with ``mlflow.pyfunc`` from S3 (the same two steps), and there is no
Prefect flow around it.

    python bench/baselines/course_batch_score.py INPUT OUTPUT MODEL RUN_ID
"""

import pickle
import sys
import uuid

import pandas as pd


def generate_uuids(n):
    return [str(uuid.uuid4()) for _ in range(n)]


def read_dataframe(filename):
    df = pd.read_parquet(filename)
    df["duration"] = (df.lpep_dropoff_datetime - df.lpep_pickup_datetime).dt.total_seconds() / 60
    df = df[(df.duration >= 1) & (df.duration <= 60)]
    df["ride_id"] = generate_uuids(len(df))
    return df


def prepare_dictionaries(df):
    df[["PULocationID", "DOLocationID"]] = df[["PULocationID", "DOLocationID"]].astype(str)
    df["PU_DO"] = df["PULocationID"] + "_" + df["DOLocationID"]
    return df[["PU_DO", "trip_distance"]].to_dict(orient="records")


def save_results(df, y_pred, run_id, output_file):
    result = pd.DataFrame()
    result["ride_id"] = df["ride_id"]
    result["lpep_pickup_datetime"] = df["lpep_pickup_datetime"]
    result["PULocationID"] = df["PULocationID"]
    result["DOLocationID"] = df["DOLocationID"]
    result["actual_duration"] = df["duration"]
    result["predicted_duration"] = y_pred
    result["diff"] = result["actual_duration"] - result["predicted_duration"]
    result["model_version"] = run_id
    result.to_parquet(output_file, index=False)


def apply_model(input_file, model_file, run_id, output_file):
    df = read_dataframe(input_file)
    dicts = prepare_dictionaries(df)
    with open(model_file, "rb") as f:
        dv, model = pickle.load(f)
    y_pred = model.predict(dv.transform(dicts))
    save_results(df, y_pred, run_id, output_file)


if __name__ == "__main__":
    input_file, output_file, model_file, run_id = sys.argv[1:5]
    apply_model(input_file, model_file, run_id, output_file)
