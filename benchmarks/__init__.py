"""The benchmarks: ``registry`` (every evaluation's reader, protocol, sink and scorer),
``readers`` (each download's layout) and ``scoring`` (each official tool's rules)."""
