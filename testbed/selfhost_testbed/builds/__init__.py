"""The parts the bed builds, one module each; every part lands in the cache (cache.cached) by version."""
