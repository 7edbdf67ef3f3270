"""State-machine modules: each owns its keys, messages, handlers, queries and events."""
