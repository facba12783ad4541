"""The baseline store: reference profiles per component, changed only on purpose.

One concept per module: :mod:`~memgate.baseline.names` (what may name a component),
:mod:`~memgate.baseline.fsops` (locks, durable writes, safe reads),
:mod:`~memgate.baseline.manifest` (the manifest: schema, rendering, summary),
:mod:`~memgate.baseline.model` (the values a store hands out),
:mod:`~memgate.baseline.inputs` (profiles on their way into a baseline),
:mod:`~memgate.baseline.inspect` (checking one stored version),
:mod:`~memgate.baseline.store` (the local store), :mod:`~memgate.baseline.remote` (the store
in object storage, with :mod:`~memgate.baseline.objects` and
:mod:`~memgate.baseline.pointers`). docs/baselines.md describes them for users.
"""
