"""What the server answers, as JSON-ready documents, composed from the Python API.

Every answer is a call into the stages (:class:`~mll.hub.Hub`, :class:`~mll.selection.LabelTable`,
:func:`~mll.selection.make_selector`, :mod:`mll.selection.coverage`, :mod:`mll.graph.search`)
shaped for the wire; nothing here chooses or ranks models itself. The HTTP layer
(:mod:`mll.serve.app`) only adds routing, authentication and limits.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

from .._json import plain
from ..errors import InvalidParameterError, NotBuiltError

logger = logging.getLogger(__name__)

#: Sample images a node's answer lists (its counts say how many there are in all).
NODE_SAMPLES = 24
#: Selections computed at once per core unless ServeSettings.concurrent_selects says otherwise.
SELECTS_PER_CORE = 3
_IMAGE_ID = re.compile(r"[0-9a-f]{64}")


class HubService:
    """One hub, opened once: its model records, its labels (loaded on first use) and tokens."""

    def __init__(self, hub: str | Path | None = None, db: str | None = None,
                 concurrent_selects: int = 0) -> None:
        from ..selection import LabelTable
        from .accounts import Accounts
        from .jobs import JobQueue
        from .solves import SolveStore
        from .tokens import TokenStore

        self.table = LabelTable(hub, db=db)
        self.hub = self.table.hub  # opens the store now: a missing hub is an error at start
        self.tokens = TokenStore(self.hub.store)
        self.jobs = JobQueue(self.hub.store)
        self.accounts = Accounts(self.hub.store)
        self.solves = SolveStore(self.hub.root)
        self._load_lock = threading.Lock()
        # Selection is mostly Python (it holds the GIL): many at once slow each one and starve
        # every other request of the interpreter; three per core keep the cores busy (numpy
        # parts run outside the GIL) and the reads fast (docs/serve.md has the measurements).
        # Waiting threads cost nothing.
        self.asking = threading.BoundedSemaphore(
            concurrent_selects or SELECTS_PER_CORE * (os.cpu_count() or 1))
        self._labels_version: tuple | None = None

    def close(self) -> None:
        self.table.close()

    def warm(self) -> None:
        """Load what the first requests would otherwise wait for: the labels and the per-style
        counts of the model pages (NotBuiltError while the hub has no labelled model)."""
        _ = self.labels().style_counts

    def labels(self):
        """The label table (NotBuiltError while the hub has no labelled model).

        Loaded once, and again when the hub's published labels change (a worker labelled a
        model, a model was removed): one small query per call tells, so a new model is selectable
        from the next request on without a restart. The new table shares everything that does not
        depend on the models (graph, matcher, sample images, backbone features) with the old one,
        and requests already holding the old table finish with it.
        """
        with self._load_lock:
            version = self._current_labels()
            if self._labels_version is not None and version != self._labels_version:
                self.table = self.table.with_fresh_models()
                logger.info("labels changed: %d labelled model(s) now", len(version))
            self._labels_version = version
            return self.table.load()

    def _current_labels(self) -> tuple:
        """Which models have a complete label, and when it was made."""
        from sqlalchemy import select

        from ..hub.records import LabelSummary

        with self.hub.store.read() as s:
            rows = s.execute(select(LabelSummary.model_id, LabelSummary.labelled_at,
                                    LabelSummary.graph_version, LabelSummary.corpus_version)
                             .where(LabelSummary.complete)).all()
        return tuple(sorted(tuple(r) for r in rows))

    # -- models ---------------------------------------------------------------------------------
    def models(self, kind: str | None = None, family: str | None = None,
               concept: str | None = None) -> dict[str, Any]:
        """Model summaries, oldest first; with ``concept`` the models that serve it, best first."""
        if concept is None:
            return {"concept": None, "models": [i.summary() for i in self.hub.list(kind, family)]}
        from ..hub.hub import check_kind
        from ..selection.coverage import indexed_node_models

        check_kind(kind)  # the same check of kind as without a concept
        table = self.labels()
        wnid = table.graph.resolve(concept)
        served = [m.to_dict() for m in indexed_node_models(table, wnid, kind)
                  if family in (None, m.family)]
        return {"concept": self._node_ref(wnid), "models": served}

    def model(self, ref: str) -> dict[str, Any]:
        """One model's record, its classes with node names, and accuracy per covered node and per
        image style."""
        from ..selection.coverage import model_nodes, model_styles

        info = self.hub.get(ref)
        doc = info.to_dict()
        doc["nodes"] = doc["styles"] = None
        doc["card"] = self.jobs.card(info.id)
        if info.labelled:
            table = self.labels()
            for c in doc["classes"]:
                c["node"] = table.graph.name(c["wnid"]) if c["wnid"] else None
            if info.id in table.models:
                doc["nodes"] = model_nodes(table, info.id)
                doc["styles"] = model_styles(table, info.id)
        return doc

    def remove(self, ref: str) -> dict[str, Any]:
        """Remove a model (its row, card and label summary; its artifact when no other model
        shares it); selection stops seeing it at the next request."""
        info = self.hub.remove(ref)
        logger.info("removed model %s (%s)", info.id, info.name)
        return {"removed": info.summary()}

    # -- jobs -----------------------------------------------------------------------------------
    def upload(self, src, filename: str, classes: bytes, *, family: str | None,
               kind: str | None, name: str | None, description: str, source: str | None,
               license: str | None, domain: str, options: dict[str, Any],
               max_bytes: int, created_by: str | None) -> dict[str, Any]:
        """Check an upload, stage it and queue the job that adds and labels it."""
        import secrets

        from ..classfile import decode, parse_classes
        from ..errors import UnknownNameError
        from ..hub.hub import family_of_kind
        from .uploads import stage, staging_dir

        if family is not None:
            try:  # a bad value in a form, not a missing resource
                family_of_kind(family, kind)
            except UnknownNameError as exc:
                raise InvalidParameterError(f"model family: {exc}") from None
        rows = parse_classes(decode(classes, "the class list"), "the class list")
        job_id = secrets.token_hex(16)
        model = stage(staging_dir(self.hub.root, job_id), filename, src, max_bytes)
        payload = {"file": model.name, "family": family, "kind": kind, "name": name,
                   "description": description, "source": source, "license": license,
                   "domain": domain, "options": options, "max_bytes": max_bytes,
                   "classes": [f"{n}\t{w}" if w else n for n, w in rows]}
        try:
            job = self.jobs.submit("upload", payload, created_by, job_id=job_id)
        except BaseException:
            import shutil

            shutil.rmtree(staging_dir(self.hub.root, job_id), ignore_errors=True)
            raise
        return job.to_dict()

    def job(self, job_id: str) -> dict[str, Any]:
        return self.jobs.get(job_id).to_dict()

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Cancel a job (queued: now, its staged upload deleted; running: ``cancelling`` until
        its worker stops and removes what it made). The answer's state says which."""
        import shutil

        from .uploads import staging_dir

        info = self.jobs.cancel(job_id)
        if info.state == "cancelled" and info.started_at is None:  # never claimed: ours to tidy
            shutil.rmtree(staging_dir(self.hub.root, info.id), ignore_errors=True)
        return info.to_dict()

    def job_list(self, state: str | None, limit: int) -> dict[str, Any]:
        return {"jobs": [j.to_dict() for j in self.jobs.list(state, limit)]}

    # -- graph ----------------------------------------------------------------------------------
    def _node_ref(self, wnid: str) -> dict[str, str]:
        graph = self.labels().graph
        return {"wnid": wnid, "name": graph.name(wnid), "synset": graph.synset_name(wnid)}

    def search_nodes(self, query: str, limit: int = 20) -> dict[str, Any]:
        """Nodes whose names match ``query``, each with its definition and sample images."""
        from ..graph.search import search_names
        from ..selection.coverage import sample_images

        table = self.labels()
        graph = table.graph
        found = search_names(graph, query, limit)
        return {"query": query, "nodes": [
            self._node_ref(w) | {"definition": graph.definition(w),
                                 "sample_images": sample_images(table, w)} for w in found]}

    def node(self, ref: str, samples: int = NODE_SAMPLES) -> dict[str, Any]:
        """A node (wnid, synset name or word) with parents, children, sample images (counts, and
        up to ``samples`` of them to show, each with its URL) and models."""
        from ..selection.coverage import indexed_node_models, sample_image_list, sample_images

        table = self.labels()
        graph = table.graph
        wnid = graph.resolve(ref)
        node = graph.node(wnid)
        return self._node_ref(wnid) | {
            "definition": node.definition, "lemmas": list(node.lemmas), "depth": node.depth,
            "parents": [self._node_ref(p) for p in node.parents],
            "children": [self._node_ref(c) for c in graph.children(wnid)],
            "sample_images": sample_images(table, wnid),
            "samples": [i | {"url": f"/api/images/{i['id']}"}
                        for i in sample_image_list(table, wnid, samples)],
            "models": [m.to_dict() for m in indexed_node_models(table, wnid)]}

    def sample_image(self, image_id: str):
        """The stored location and bytes of a sample image of the current corpus (an unknown
        id, or an image of another role, is an UnknownNameError)."""
        from ..errors import UnknownNameError

        if not isinstance(image_id, str) or not _IMAGE_ID.fullmatch(image_id):
            raise InvalidParameterError(f"an image id is 64 lowercase hex digits, got "
                                        f"{str(image_id)[:80]!r}")
        loc, record, data = self.labels().corpus.encoded(image_id)
        if record.role != "sample":
            raise UnknownNameError("sample image", image_id,
                                   hint="only the corpus's sample images are served")
        return loc, data

    def image(self, image_id: str, size: int | None = None) -> tuple[bytes, str]:
        """A sample image of the current corpus as ``(PNG bytes, media type)``; scaled down to fit
        ``size`` pixels a side when given (never up).

        A stored PNG at full size is sent as stored; small images are stored as raw pixels and
        encoded here.
        """
        import io

        from PIL import Image

        from ..corpus.records import CODEC_PNG
        from ..corpus.store import decode

        loc, data = self.sample_image(image_id)
        if loc.codec == CODEC_PNG and (size is None or max(loc.shape[:2]) <= size):
            return data, "image/png"
        img = Image.fromarray(decode(loc.codec, data, loc.shape))
        if size is not None:
            img.thumbnail((size, size), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=6)
        return buf.getvalue(), "image/png"

    # -- ask ------------------------------------------------------------------------------------
    def select(self, classes: list[str] | str, domain: str = "", method: str = "chco",
               params: dict[str, Any] | None = None,
               pinned: dict[str, str] | None = None) -> dict[str, Any]:
        """The selection for a task, as ``mll select --json`` prints it."""
        from ..errors import UnknownNameError
        from ..selection import Task, make_selector, selectors

        try:  # a bad value in a request body, not a missing resource
            method_cls = selectors.get(method)
        except UnknownNameError as exc:
            raise InvalidParameterError(f"selection method: {exc}") from None
        if not method_cls.zero_shot:
            raise InvalidParameterError(f"method {method!r} needs the task's labelled images; "
                                        "choose one that selects from class names alone")
        selector = make_selector(method, **(params or {}))
        selector.validate_params()
        task = Task.create(classes, domain=domain, pinned=pinned)
        table = self.labels()
        with self.asking:
            return plain(selector.fit(table).select(task).to_dict())

    def solve(self, classes: str | list[str], domain: str,
              files: list[tuple[str, Any]], *, method: str = "chco", max_bytes: int,
              keep: int = 20) -> dict[str, Any]:
        """Select for the task, predict the sent images (several files or one zip), and keep the
        HTML report and the saved predictor (``mll.reuse.solve``, as ``mll solve`` runs it).

        ``classes``: a list, or text with one class per line (commas also separate).
        """
        import shutil

        from ..reuse import solve
        from ..selection import Task
        from .solves import stage_images

        if isinstance(classes, str):
            classes = [c for c in re.split(r"[\n,]", classes) if c.strip()]
        task = Task.create(classes, domain=domain)
        solve_id, work = self.solves.new_work()
        try:  # the sent files are checked before the labels are loaded
            staged = stage_images(work, files, max_bytes)
            if not staged.names:
                raise InvalidParameterError(
                    f"none of the {len(staged.skipped)} files sent is an image: "
                    f"{staged.skipped[0]['file']!r}: {staged.skipped[0]['reason']}")
            table = self.labels()
            try:
                with self.asking:  # a solve selects too: it waits its turn as selections do
                    result = solve(table, task, staged.folder, method=method,
                                   report=work / "report.html", save=work / "predictor.zip")
            except InvalidParameterError as exc:  # name the sent files, not the staging paths
                raise InvalidParameterError(self._sent_names(str(exc), staged)) from None
            names = [staged.names[Path(p).name] for p in result.paths]
            doc = {"solve_id": solve_id, "classes": list(task.classes), "domain": task.domain,
                   "predictions": [
                       {"file": n, "class": task.classes[k], "confidence": round(float(c), 4)}
                       for n, k, c in zip(names, result.predictions, result.confidences,
                                          strict=True)],
                   "skipped": staged.skipped + [
                       {"file": staged.names.get(Path(s["path"]).name, "unnamed"),
                        "reason": self._sent_names(s["reason"], staged)}
                       for s in result.skipped],
                   "selection": plain(result.selection.to_dict()),
                   "report_url": f"/api/solves/{solve_id}/report",
                   "predictor_url": f"/api/solves/{solve_id}/predictor"}
            self.solves.publish(solve_id, work, plain(doc), keep)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        logger.info("solved a task of %d classes on %d images (%s)", len(task.classes),
                    len(names), solve_id)
        return doc

    @staticmethod
    def _sent_names(message: str, staged) -> str:
        """A message about staged files with each file's sent name in place of its path."""
        for staged_name, sent in staged.names.items():
            message = message.replace(str(staged.folder / staged_name), sent)
        return message.replace(f"under {staged.folder}", "sent").replace(str(staged.folder),
                                                                          "the images sent")

    def solve_file(self, solve_id: str, which: str) -> Path:
        """A kept solve's ``report`` (HTML) or ``predictor`` (zip)."""
        return self.solves.path(solve_id, which)

    # -- pages ----------------------------------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        """What the hub holds: models (labelled or not), nodes with sample images, labels."""
        models = self.hub.list()
        doc = {"models": len(models), "experts": sum(m.kind == "expert" for m in models),
               "vlms": sum(m.kind == "vlm" for m in models),
               "labelled": sum(bool(m.labelled) for m in models),
               "sample_images": None, "nodes_with_samples": None}
        try:
            table = self.labels()
        except NotBuiltError:
            return doc
        return doc | {"sample_images": len(table.samples.ids),
                      "nodes_with_samples": len(set(table.samples.nodes.tolist()))}

    def find_models(self, text: str, limit: int = 20) -> list[dict[str, Any]]:
        """Models whose name or family contains ``text`` (case-insensitive), oldest first."""
        needle = text.strip().lower()
        return [m.summary() for m in self.hub.list()
                if needle and (needle in m.name.lower() or needle in m.family.lower())][:limit]
