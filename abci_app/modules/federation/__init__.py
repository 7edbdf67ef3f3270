"""Federation module: tasks, participants, rounds, contributions and model versions."""
