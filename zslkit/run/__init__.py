"""Run: papermill orchestration of the numbered notebooks into ``reports/<run>/``, the notebook
session, sweeps and the run's records (params, environment, results)."""
