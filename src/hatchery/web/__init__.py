"""Static files Hatchery serves: the vendored media player of the embed page."""
