"""How big each fault case is: CI-size by default, the issue's full counts with MAESTRO_FAULTS=full
(`make faults`). CI has ~10 minutes for the whole suite on a shared 2-core machine."""

from __future__ import annotations

import os
import time

MODE = "full" if os.environ.get("MAESTRO_FAULTS") == "full" else "ci"
FULL = MODE == "full"

CRASH_APPS = 100 if FULL else 30
CRASH_KILLS = 10 if FULL else 3
APISERVER_APPS = 100 if FULL else 30
APISERVER_RESTARTS = 3 if FULL else 1
DRIFT_APPS = 100 if FULL else 30
DRIFT_FRACTION = 0.3  # of the apps get one child deleted or edited
DOWN_APPS = 100 if FULL else 30
FUZZ_SPECS = 1000 if FULL else 150
FUZZ_BATCH = 50  # accepted apps in the namespace at once (NodePorts and time stay bounded)
CONCURRENT_APPS = 20 if FULL else 6
CONCURRENT_ROUNDS = 20 if FULL else 8

# Generous limits: the machine is shared and slow; times are measured and reported, not asserted.
CONVERGE_TIMEOUT = 600.0 if FULL else 300.0
# Seed for the random fault points and the fuzzer; printed with the figures so a failure can be replayed.
SEED = int(os.environ.get("MAESTRO_FAULTS_SEED") or time.time_ns() % 1_000_000)
CASE_TIMEOUT = 3600 if FULL else 600
