"""Runs LocalStack Lambda functions as local Python processes, for machines without Docker.

``executor.py`` is the LocalStack plugin (it runs inside LocalStack's environment);
``runtime_client.py`` is the stdlib-only script each function process runs.
"""
