"""The analysis: one pass over a parsed module answers every rule's questions.

- ``facts.build_facts(module, config) -> FileFacts``: the symmetric calls of the file (lifecycle
  calls and collectives, direct or through same-file helpers, with the helper chain), each with
  ``condition`` (the controlling rank condition or rank-only decorator), ``data_loop`` (the
  enclosing loop with a data-dependent trip count) and ``early_exit`` (the rank-dependent early
  exit that can skip it); ``FileFacts.line``/``range_of``/``text`` resolve positions and source
  text lazily.
- ``symbols``: lifecycle and collective names, import resolution, ``symmetric_call_names``.
- ``rank``: rank, data and loader sources, distributed-mode checks, condition polarity.
- ``loops``: loop frames and why a loop's trip count depends on data.
- ``control``: condition frames, early exits, the exemptions (same calls on every branch,
  complementary "rank 0 first" conditions).
- ``positions``: positions of the cited nodes, far cheaper than ``PositionProvider``.
"""
