"""Kinesis adapters: decode -> (validate, predict in model_service) -> publish."""
