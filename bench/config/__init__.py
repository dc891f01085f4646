"""Config layer: the config schema and its checks, config names, composition, the run folder and the protocol."""
