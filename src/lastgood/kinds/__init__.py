"""Component kinds: one module per kind behind lastgood.kinds.base.Kind, looked up in registry."""
