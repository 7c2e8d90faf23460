"""Ride-duration prediction service shared by the Lambda, web and batch adapters.

Kept free of imports on purpose: the Lambda pays for every import at cold start,
so each adapter imports only the modules it needs.
"""
