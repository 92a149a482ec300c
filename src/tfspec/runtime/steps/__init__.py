"""One module per plan step kind, each exposing ``run(ctx: StepContext) -> dict`` (the step's metrics)."""
