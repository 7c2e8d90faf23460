"""Tools around the streams, for people and tests, never shipped in the Lambda image.

``python -m stream_tools`` (``cli``) runs them: ``producer`` sends ride events
as a backend would, ``tail`` follows a stream, ``replay`` processes again the
batches an event source gave up on; ``local_invoke`` builds the Kinesis event
and context Lambda hands a handler.
"""
