"""Generation backends behind one interface (see base.Backend); looked up by name in registry.BACKENDS."""
