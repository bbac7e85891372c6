"""Pure calculators over iterables of domain objects (or objects that look like them)."""
