"""`python -m realtime_server.bench`: the same as the `realtime-bench` command."""

from .cli import main

main()
