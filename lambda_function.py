"""AWS Lambda entry point: Kinesis ride events in, ride-duration prediction events out.

A thin adapter: ``model_service.kinesis.function`` builds the function from
the environment's settings, once per container (the model is loaded here, at
import, so a model that cannot load fails the function's init and Lambda
keeps the records).
"""

from model_service.config import Settings
from model_service.kinesis.function import prediction_function

lambda_handler = prediction_function(Settings.from_env())
