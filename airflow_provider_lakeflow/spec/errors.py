"""The one exception the spec checks raise (a leaf module: every check imports it, it imports none of them)."""

from __future__ import annotations

from airflow_provider_lakeflow.errors import LakeflowInputError


class PipelineSpecError(LakeflowInputError):
    """A pipeline spec that Lakeflow Connect would reject (or that would land data where it should not)."""

    def __init__(
        self, field: str, problem: str, fix: str, condition: str | None = None, source: str | None = None
    ) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        #: The error condition the workspace documents for this rule, when it has one.
        self.condition = condition
        #: Where the spec came from when that is not the spec itself (a pipeline inside a bundle file).
        self.source = source
        where = f" (in {source})" if source else ""
        seen_as = f" (the workspace rejects this with {condition})" if condition else ""
        super().__init__(f"Pipeline spec field '{field}'{where}: {problem}{seen_as} Fix: {fix}")

    def located(self, source: str) -> PipelineSpecError:
        """The same error, saying where the spec came from."""
        return PipelineSpecError(self.field, self.problem, self.fix, self.condition, source)
