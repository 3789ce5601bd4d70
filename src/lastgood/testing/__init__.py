"""Fakes shipped with lastgood for tests, benchmarks and the demo (like httpx's MockTransport).

`endpoint`: moto's server in-process (`LocalEndpoint`, `FAKE_CREDENTIALS`, `free_port`); `shop`: the sample
application; `traffic`: a CloudWatch traffic simulator. The in-memory kind, source and notifier live beside
their interfaces (`kinds/fake.py`, `notify/recording.py`).
"""
