"""ctid's first-party plugins, installed with ctid as the `ctid_plugins` package.

Each plugin is a subpackage with the same anatomy: `plugin.py` (the hookimpls only),
`config.py` (its `[plugins.NAME]` options and their check), one module per job, and a
`README.md`. Each is registered in the `ctid.plugins` entry point group by pyproject.toml.
`examples/` is not part of this package: every example is a distribution of its own.
"""
