"""`python -m realtime_bench`: the same as the `realtime-bench` command."""

from .cli import main

main()
