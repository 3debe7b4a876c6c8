"""Serving: the LitServe audio-to-preset server."""
