"""The command-line layer: the options reader of the entry points (:mod:`.options`), the flags every command shares
(:mod:`.arguments`), one module per command, and the ``lffnet`` command that reaches them all (:mod:`.lffnet`).

A command module parses its arguments and calls the library; the work itself lives in ``deploy/``, ``data/`` and
``archs/``. ``lffnet_arch/train.py`` and ``test.py`` stay beside the package root, where BasicSR keeps them.
"""
