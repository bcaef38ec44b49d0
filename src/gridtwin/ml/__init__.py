"""Learning from job records: resource-requirement predictors and a generative workload model."""
