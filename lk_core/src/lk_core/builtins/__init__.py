"""lk-core's own plugins, registered through its entry points like any other plugin."""
