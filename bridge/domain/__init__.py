"""The conversation and its lifecycle: what may happen in each status. No I/O."""
