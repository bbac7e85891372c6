"""The plugin system: the hook contract (:mod:`.hookspecs`) and the manager that loads plugins."""
