"""`realtime-bench`: what the relay costs, measured against a direct connection and tuned nginx.

One run starts the embedded gateway (with the `local/echo` fal app as upstream), the relay as its
own process, and Debian's nginx as a WebSocket reverse proxy, then drives the same workload over
each route from a separate load-generator process and writes a table, a JSON file and a PNG.

Modules, one job each: `stats` (percentiles, ratios, targets), `load` (the load generator, run as
a child process), `fanout` (a live session's driver and viewers, in the load generator), `procs`
(starting the measured servers and reading their CPU and RSS), `nginx` (its generated config),
`report` (table, JSON, PNG), `cli` (the sweep).
"""
