"""The pure domain: value objects and rules, with no I/O, plugins, SQL or clock reads."""
