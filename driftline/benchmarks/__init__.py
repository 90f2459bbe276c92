"""Benchmarks of the running system (``driftline bench stream``).

* :mod:`~driftline.benchmarks.workload`: generated readings and champions trained on the
  history before them, in a temporary model store.
* :mod:`~driftline.benchmarks.cluster`: topics, pre-publishing and reading records back.
* :mod:`~driftline.benchmarks.pipelines`: the pipelines a benchmarked worker process runs.
* :mod:`~driftline.benchmarks.workers`: ``driftline worker`` subprocesses and their memory.
* :mod:`~driftline.benchmarks.throughput` and :mod:`~driftline.benchmarks.latency`: the
  phases on the broker; :mod:`~driftline.benchmarks.baseline` and
  :mod:`~driftline.benchmarks.forecasts`: the in-process ones.
* :mod:`~driftline.benchmarks.report`: figures, goals, the table and the JSON.
"""
