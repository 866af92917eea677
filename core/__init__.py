"""filterviz core: the job spec, settings, job store and result storage (torch-free), and the engine."""
