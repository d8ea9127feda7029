"""The analysis: one pass over a parsed module answers every rule's questions.

Entry point and what the rules read:

- ``facts``: ``build_facts(module, config) -> FileFacts``: the symmetric calls of the file
  (``SymmetricCall``: lifecycle calls and collectives, direct or through helpers, with the
  chain), each with ``condition`` (the controlling rank condition or rank-only decorator),
  ``data_loop`` (the enclosing loop with a data-dependent trip count) and ``early_exit`` (the
  rank-dependent early exit that can skip it); ``FileFacts.line``/``range_of``/``text`` resolve
  positions and source text lazily.

The single traversal, one room per question (``traversal`` holds the shared state):

- ``scopes`` -- what does this name or call resolve to? Definitions, imports, bindings, the keys
  of helper functions.
- ``values`` -- does this value differ across ranks? The bits of expressions, assignments, what
  collectives make the same on every rank.
- ``flow`` -- what controls this call? Blocks, conditions, loops, comprehensions, handlers and
  the rank-dependent early exits.

The tables and decisions those rooms consult:

- ``calls``: the recorded calls, each function's calls, and the helper chains that lead to a
  symmetric call.
- ``symbols`` (and ``names``, libcst-free for the prefilter): lifecycle and collective names,
  import qualification, ``symmetric_call_names``.
- ``rank``: rank, data and loader sources, distributed-mode checks, condition polarity.
- ``loops``: loop frames and why a loop's trip count depends on data.
- ``control``: condition frames, early exits, the exemptions (same collective sequences on every
  branch, through helpers and across an early exit; role splits of an ``if``/``elif`` chain;
  complementary "rank 0 first" conditions), and what controls a call given its path condition
  and groups, with the near-miss reasons ESP004 reports.
- ``groups``: the process group a collective runs on (``group=`` or its positional parameter),
  where groups and ranks lists come from (``new_group(R)``, ``new_subgroups_by_enumeration(L)``,
  ``get_process_group_ranks(G)``, aliases, helper arguments), and the membership tests.
- ``paths``: path conditions as formulas over uniform, rank and membership atoms, and whether
  one depends on the rank among a group's members (a truth table over its atoms).
- ``positions``: positions of the cited nodes, far cheaper than ``PositionProvider``.

The project model, which the rooms ask about other modules:

- ``project``: the project root, its import roots and module names (no libcst).
- ``summaries``: what importers learn about a module's functions and classes, computed once.
- ``offers``: which names of a module can give an importer anything, read from its text, so that
  only those modules are parsed for a summary and only files that call one are candidates.
"""
