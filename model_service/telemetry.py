"""What every Lambda function reports with: a JSON logger and CloudWatch EMF metrics, from Powertools.

Shared by the stream functions and the scoring function; it imports nothing of
either, so the scoring function does not load the Kinesis path to log.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from model_service.config import Settings


def function_telemetry(settings: Settings, default_service: str) -> tuple[Logger, Metrics]:
    """A function's JSON logger (also for model_service's own loggers) and its EMF metrics."""
    service = settings.service_name or default_service
    logger = Logger(service=service)
    copy_config_to_registered_loggers(source_logger=logger, include={"model_service"})
    return logger, Metrics(namespace=settings.metrics_namespace, service=service)
