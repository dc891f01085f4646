"""Tests of `bench.run`: training (checkpoint selection, schedules, budgets, resume, crafted checkpoints),
accelerators, DDP and progress output."""
