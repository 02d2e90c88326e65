"""ctid: CTI middleware. PBX events in, one normalized event model out on a ZeroMQ bus."""

__version__ = "0.1.0"
