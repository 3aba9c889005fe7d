"""Data: the embedded synthetic default data, converters and readers."""
