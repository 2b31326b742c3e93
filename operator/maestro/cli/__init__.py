"""The `maestro` command: offline subcommands (validate, render, crd) in `main`, the operator (`run`) in `run`."""
