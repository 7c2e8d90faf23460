"""Batch scoring: a month of TLC trips in, the course's predictions file out.

``score`` scores one file, ``storage`` reads and writes it (local or ``s3://``,
never half-written), ``monthly`` names a month and its paths, ``schedule``
reads the scoring function's event, ``backfill`` scores a range of months.
"""
