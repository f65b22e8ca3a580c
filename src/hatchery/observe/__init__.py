"""What a Hatchery process tells its operator about itself, besides its answers:

- ``metrics``: the Prometheus metrics every process keeps in its own registry, and the
  functions the engine calls to count and time what it does;
- ``scrape``: what a scrape reads, with the database-wide gauges read at most once per interval;
  ``server``: a worker's port for it (the API serves ``GET /metrics`` itself);
- ``upstream``: one call to a provider, timed, counted and traced;
- ``logs``: the log lines, readable or one JSON object each, carrying the request's and the
  task's ids;
- ``tracing``: OpenTelemetry spans, off unless an OTLP endpoint is set, with the submit's trace
  context carried to the worker through the task.

The store, the queue and the workers call these; none of them knows a wire format or a
collector's address.
"""
