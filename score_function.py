"""AWS Lambda entry point of scheduled batch scoring: one month of trips in S3 in, its predictions file out.

A thin adapter, from the same Dockerfile as the stream functions (its
``scoring`` target, which adds parquet): ``model_service.batch.function``
builds the function from the environment's settings, once per container.
"""

from model_service.batch.function import scoring_function
from model_service.config import Settings

lambda_handler = scoring_function(Settings.from_env())
