"""Python programs as pprof profiles: ``memgate capture``, ``memgate convert`` and the pytest
plugin share what is here.

* :mod:`memgate.python.names` names Python functions the way a gate needs them named: by
  module and qualified name (``json_cache.JsonCache.put``), independent of where the checkout
  lives, so that a baseline made on one machine compares with a run on another;
* :mod:`memgate.python.pprof` writes stacks of such frames as a pprof profile (bounded and
  escaped: every name may come from a pull request's code);
* :mod:`memgate.python.tracemalloc_io` and :mod:`memgate.python.memray_io` read the two
  tracers' data into those stacks.
"""
