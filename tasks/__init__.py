"""Built-in tasks; each module registers one :class:`hpobench_stn.Task`."""
