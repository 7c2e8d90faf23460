"""The model: its features, how it is trained and logged, read from the registry, deployed, loaded and served.

Kept free of imports on purpose, like the package above it: the Lambda
function imports only ``load`` and what serves a weight table.
"""
