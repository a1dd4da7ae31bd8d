"""The shapes of the API's answers, for the OpenAPI schema and its clients.

The service builds plain dicts from the Python API; these models describe them (and FastAPI checks
each answer against them). Each allows more fields than it lists, so a field the Python API adds
reaches clients before it is described here.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Health(_Open):
    status: str
    version: str


class WhoAmI(_Open):
    anonymous: bool
    public: bool
    role: str | None = Field(description="reader, uploader or admin; null when anonymous")
    id: str | None = None
    name: str | None = None


class NodeRef(_Open):
    wnid: str
    name: str
    synset: str


class Measured(_Open):
    images: int = Field(description="Sample images the accuracy is measured on.")
    correct: int
    accuracy: float | None
    interval: tuple[float, float] | None = Field(description="95% Wilson interval.")


class ModelSummary(_Open):
    """What ``mll hub list --json`` prints for a model."""

    id: str
    name: str
    kind: str
    family: str
    classes: int
    labelled: bool
    backbone: str | None
    n_params: int
    latency_ms: float | None


class Head(_Open):
    index: int
    name: str
    wnid: str


class ServingModel(Measured):
    """A model that serves a node, with its measured accuracy there."""

    id: str
    name: str
    kind: str
    family: str
    heads: list[Head] = Field(description="An expert's heads at or below the node.")


class ModelList(_Open):
    concept: NodeRef | None = Field(description="The node searched for, when ``concept`` given.")
    models: list[ServingModel] | list[ModelSummary]


class HeadClass(_Open):
    index: int
    name: str
    wnid: str | None
    score: float | None
    confirmed: bool
    node: str | None = Field(None, description="The node's name, once the hub is labelled.")


class CoveredNode(Measured):
    wnid: str
    name: str


class StyleAccuracy(Measured):
    style: str = Field(description="Style group of the sample images: photo, emoji, drawing, "
                                   "gray28.")


class ModelDetail(ModelSummary):
    """The record ``mll hub show --json`` prints, plus accuracy per covered node."""

    classes: list[HeadClass]  # type: ignore[assignment]  (the list, not the count)
    n_classes: int
    labels: dict[str, Any] | None = Field(description="The label summary; null if unlabelled.")
    nodes: list[CoveredNode] | None = Field(
        description="Accuracy per covered sample node, best first; null without a label.")
    styles: list[StyleAccuracy] | None = Field(
        description="Accuracy per image style on the sample images it covers; null without a "
                    "label.")
    card: dict[str, Any] | None = Field(
        None, description="The card uploaded with the model (description, uploader, job); null "
                          "for a model added otherwise.")


class SampleImages(_Open):
    at: int = Field(description="Sample images of the node itself.")
    below: int = Field(description="Sample images of the node and every node below it.")


class NodeFound(NodeRef):
    definition: str
    sample_images: SampleImages


class NodeSearch(_Open):
    query: str
    nodes: list[NodeFound]


class SampleImage(_Open):
    id: str = Field(description="The image's id: sha256 of its pixels.")
    wnid: str = Field(description="The node it shows (this node, or one below it).")
    style: str
    url: str = Field(description="Where to fetch it: /api/images/{id} (add ?size=N for a "
                                 "thumbnail).")


class NodeDetail(NodeFound):
    lemmas: list[str]
    depth: int
    parents: list[NodeRef]
    children: list[NodeRef]
    samples: list[SampleImage] = Field(
        description="Up to 24 of its sample images: those at the node first, then below it.")
    models: list[ServingModel]


class ClassChoice(_Open):
    name: str
    nodes: list[dict[str, Any]]
    models: list[dict[str, Any]]
    predicted_accuracy: float | None
    interval: tuple[float, float] | None
    covered_by: str
    match_confidence: float | None
    uncertain: bool


class Selection(_Open):
    """What ``mll select --json`` prints."""

    method: str
    task: dict[str, Any]
    classes: list[ClassChoice]
    predicted_accuracy: float | None
    interval: tuple[float, float] | None
    models: list[str]
    seconds: float
    rule: str
    explanation: list[str]
    warnings: list[str]
    diagnostics: dict[str, Any]


class Prediction(_Open):
    file: str = Field(description="The sent file's name (a zip member's name for a zip).")
    class_: str = Field(alias="class")
    confidence: float


class Skipped(_Open):
    file: str
    reason: str


class Solve(_Open):
    """A solved task: predictions, the selection behind them, and where the report and the
    saved predictor are."""

    solve_id: str
    classes: list[str]
    domain: str
    predictions: list[Prediction]
    skipped: list[Skipped]
    selection: Selection
    report_url: str
    predictor_url: str


class Progress(_Open):
    done: int = Field(description="Sample images the model has outputs for.")
    total: int = Field(description="Sample images to label (0 until labelling starts).")


class Job(_Open):
    id: str
    kind: str = Field(description="'upload': add a model, then label it.")
    state: str = Field(description="queued, running, done, failed, cancelling (stops at its "
                                   "worker's next step) or cancelled")
    phase: str = Field(description="queued, checking, labelling, done, failed or cancelled")
    progress: Progress
    message: str = Field(description="Why the job failed, or what it produced.")
    model_id: str | None = Field(description="The model, once added (live when state is done).")
    attempts: int = Field(description="Claims by workers; more than one after a worker died.")
    created_at: str
    started_at: str | None
    finished_at: str | None
    upload: dict[str, Any]


class JobList(_Open):
    jobs: list[Job]


class Removed(_Open):
    removed: ModelSummary
