"""``driftline demo``: the whole product on one machine, end to end.

A local broker, champions trained on generated history, worker, monitor and trainer as
separate processes, and a live stream of machines, air-quality stations and products with
anomalies, gaps and a demand drift, watched through the services' metrics and the output
topics until the drift is detected, retrained, promoted and the error recovers.

* :mod:`~driftline.demo.scenario`: the generated world and its drift.
* :mod:`~driftline.demo.bootstrap`: the first champions, with progress bars.
* :mod:`~driftline.demo.environment`: the run's files and the services' settings.
* :mod:`~driftline.demo.services`: the service subprocesses.
* :mod:`~driftline.demo.stream`: the producers.
* :mod:`~driftline.demo.observer`: the output topics read back.
* :mod:`~driftline.demo.scrape` and :mod:`~driftline.demo.timeline`: metrics over time.
* :mod:`~driftline.demo.dashboard`, :mod:`~driftline.demo.summary`,
  :mod:`~driftline.demo.report`: what a person sees.
* :mod:`~driftline.demo.run`: the orchestration.
"""
