"""The pure core of assetwatch: records, windows, detectors, calibration, state machines.

Nothing in this package imports a broker client, a stream framework, a metrics library,
the wall clock or the environment (``tests/streams/test_purity.py`` enforces it), so all of
it runs in-process, deterministically, and is tested without Kafka.
"""
