"""The closed drift -> retrain -> promote loop as a reusable scenario.

:class:`driftline.loop.runner.LoopRunner` starts the worker, the monitor and the trainer as
subprocesses against a broker and a fresh model store, streams a drifting demand scenario
(:mod:`driftline.loop.scenario`) and returns what it observed on the output topics;
:func:`driftline.loop.figures.loop_figures` turns that into the loop's figures. The tests
in ``tests/e2e`` and ``driftline bench loop`` run it.
"""
