"""Built-in methods; each module registers one (or a family of) :class:`hpobench_stn.Method`."""
