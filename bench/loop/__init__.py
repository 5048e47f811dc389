"""The pieces of ``python -m bench.bench_loop`` (gan_zoo's loop vs raw PyTorch, issue 4).

- ``jobs``: a worker's ``Job``, the data, and the two loops being compared;
- ``clock``: the ``Clock`` each worker ticks, and the memory readings;
- ``workers``: the worker process and one runner per implementation;
- ``race``: the parent that runs workers in turns, and each benchmark's jobs;
- ``summary``: medians and ratios of the workers' answers;
- ``check``: the equivalence check (same losses and weights as the reference);
- ``tables`` and ``report``: the markdown section of ``bench/RESULTS.md``.
"""
