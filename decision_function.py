"""AWS Lambda entry point of the decision step: prediction events in, decision events out.

A second, independent consumer of the predictions stream; the prediction
function knows nothing of it. It loads no model, so its cold start is small.
"""

from model_service.config import Settings
from model_service.kinesis.function import decision_function

lambda_handler = decision_function(Settings.from_env())
