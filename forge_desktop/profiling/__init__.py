"""Process and system measurement: one sampler shared by the memory benchmark and profilers."""
