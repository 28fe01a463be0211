"""`realtime-bench`: what the relay costs, on loopback against a direct connection and tuned nginx,
or in front of a real deployment.

A local run starts the embedded gateway (with the `local/echo` fal app as upstream), the relay as
its own process, and Debian's nginx as a WebSocket reverse proxy, then drives the same workload over
each route from a separate load-generator process and writes a table, a JSON file and a PNG. A
`--target` run measures any deployment (and `--compare` a second one) and starts nothing.

Modules, one job each: `cli` (arguments, dispatch), `sweep` (the local sweep and its interleaved
plan), `compare` (`--target`/`--compare`), `target` (an endpoint: URL, app, credentials), `browser`
(the widget in Chromium), `load` (the load generator, run as a child process), `fanout` (a live
session's driver and viewers, in the load generator), `images` (webcam-like JPEG inputs), `runner`
(one point: a load generator and the readings around it), `procs` (starting the measured servers
and reading their CPU and RSS), `nginx` (its generated config), `stats` (percentiles, ratios,
targets), `spread` (medians of repeated runs with min–max), `record` (every run so far, on disk,
and a clean stop), `progress` (the progress bar), `report` (table, JSON, PNG).
"""
