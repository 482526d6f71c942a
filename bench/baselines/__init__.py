"""Baseline Lambda handlers written the way tutorials deploy them, for the cold-start benchmark."""
