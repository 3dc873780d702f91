"""The scheduled loop: one leader among replicas runs each job slot once, and nothing ever ends it.

- `models`: the lease, job-run and heartbeat tables;
- `lease`: leader election through a lease row with a fencing epoch;
- `slots`: claim a job's time slot, record its outcome and heartbeat;
- `monitors`: which monitors to schedule, read from the registry;
- `supervisor`: the APScheduler 3 process scheduler, its lease thread and watchdog.

Import the submodules directly: this package stays free of APScheduler so the tables load fast.
"""
