"""The run pipeline: train and evaluate one config and write its record; rebuild, time and re-score saved runs."""
