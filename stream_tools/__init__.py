"""Tools around the streams, for people and tests, never shipped in the Lambda image.

``producer`` sends ride events as a backend would, ``tail`` follows a stream,
``local_invoke`` builds the Kinesis event and context Lambda hands a handler.
"""
