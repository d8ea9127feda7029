"""Fixes: libcst codemods that rules declare (``Rule.fix``), applied only when they verify.

See :mod:`esper_lint.fixes.apply` for the loop that applies them and
:mod:`esper_lint.fixes.move_call` for the ESP001/ESP004 codemod.
"""
