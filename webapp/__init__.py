"""The web app behind ``app.py``: sessions and their files (``session``), propagation through
the engine (``propagate``), exports (``export``), the weights it runs (``weights``) and the
page (``ui``, the only module that imports Gradio)."""
