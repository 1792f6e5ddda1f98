"""Results -> rich renderables and JSON-ready dicts. Returned, never printed."""
