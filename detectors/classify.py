"""Runs the detectors over an exchange's fields: whole values, record rules, free text."""
from __future__ import annotations

import re
from sensor.model import Field, Finding

from . import DETECTORS, nlp

DEFAULT_MIN_CONFIDENCE = 0.5
_WINDOW = 40  # characters of context each side of a span in free text
# Free text worth asking spaCy about: two capitalized words in a row, or a cue before a single name.
_NER_WORTHY = re.compile(r"\b[A-Z][\w'’-]+\s+[A-Z][\w'’-]+|\b(?:name is|I'm|I am|Dear|Hi|Hello|Mr|Mrs|Ms|Dr|lives? in|from)\b")
_KEY_DETECTORS = tuple(d for d in DETECTORS if d.in_keys)
_TEXT_DETECTORS = tuple(d for d in DETECTORS if d.text_pattern is not None)
_MAX_SHAPES = 20_000  # record shapes whose detectors are remembered (cleared when full)
_MAX_TEXTS = 20_000  # texts whose pattern matches are remembered (cleared when full) ...
_MAX_CACHED_TEXT = 1024  # ... if this short: long texts seldom repeat, and memory stays bounded
_MAX_VALUES, _MAX_REMEMBERED_VALUE = 50_000, 64  # values whose stage-1 candidates are remembered, and their length
_PER_FIELD = object()  # a candidate that depends on the field too, not only on the value: asked each time
_BY_ENTITY = {label: d for d in DETECTORS for label in d.entity_labels}


_SENTENCE = re.compile(r"[.!?,;:]\s")


def is_free_text(value: str) -> bool:
    """Prose rather than a name or a label: six words, or three with sentence punctuation."""
    words = value.count(" ") + 1
    return len(value) >= 12 and (words >= 6 or (words >= 3 and _SENTENCE.search(value) is not None))


class Classifier:
    def __init__(self, min_confidence: float = DEFAULT_MIN_CONFIDENCE, ner: bool = True):
        self.min_confidence = min_confidence
        self.ner = ner
        self._shapes: dict[tuple, dict[str, tuple]] = {}
        self._text_spans: dict[str, tuple] = {}
        self._detector_sets: dict[tuple, tuple] = {}
        self._values: dict[tuple[int, str], tuple] = {}

    def classify(self, fields: list[Field]) -> list[Finding]:
        found: dict[tuple[str, str, str], Finding] = {}
        record_types: dict[int, set[str]] = {}
        leftovers: list[Field] = []

        def add(f: Finding) -> None:
            k = (f.part, f.path, f.type)
            if k not in found or found[k].confidence < f.confidence:
                found[k] = f

        for field in fields:
            hits = self._whole_value(field)
            for hit in hits:
                add(hit)
                if not field.is_key:
                    record_types.setdefault(id(field.record), set()).add(hit.type)
            if not hits and not field.is_key:  # a key is judged whole: it is a name, not text
                leftovers.append(field)

        free_text = []
        for field in leftovers:
            types = record_types.get(id(field.record))
            if types:
                for det in DETECTORS:
                    if det.related and (conf := det.related(field, types)) >= self.min_confidence:
                        add(Finding(det.type, field.part, field.path, conf, field.value))
            if len(field.value) >= 12 and " " in field.value.strip():  # shorter values were judged whole
                free_text.append(field)

        if free_text and self.ner:
            self.prepare(free_text)
        for field in free_text:
            for hit in self._free_text(field, ner=self.ner and is_free_text(field.value)):
                add(hit)
        return list(found.values())

    def prepare(self, fields) -> None:
        """Run spaCy once, batched, over the free text among `fields` (possibly of many exchanges)."""
        if self.ner:
            nlp.warm(f.value for f in fields if is_free_text(f.value) and _NER_WORTHY.search(f.value))

    def _detectors(self, field: Field) -> tuple:
        """The detectors whose context admits the field. Contexts depend on the keys around a value,
        not on the value, and the same record shapes repeat endlessly: decide once per shape."""
        if field.is_key:
            return self._interned(tuple(d for d in _KEY_DETECTORS if d.in_context is None or d.in_context(field)))
        rec = field.record
        if rec.detectors is None:
            shape = (tuple(k.raw for k in rec.parents), tuple(k.raw for k in rec.keys))
            rec.detectors = self._shapes.get(shape)
            if rec.detectors is None:
                if len(self._shapes) >= _MAX_SHAPES:
                    self._shapes.clear()
                rec.detectors = self._shapes[shape] = {}
        admitted = rec.detectors.get(field.key.raw)
        if admitted is None:
            admitted = rec.detectors[field.key.raw] = self._interned(tuple(
                d for d in DETECTORS if d.in_context is None or d.in_context(field)))
        return admitted

    def _interned(self, detectors: tuple) -> tuple:
        """One tuple object per set of detectors (a few dozen at most), so its id can key _values."""
        return self._detector_sets.setdefault(detectors, detectors)

    def _candidates(self, detectors: tuple, field: Field):
        """(detector, stage-1 candidate) for the value. Most candidates depend on the value alone, and
        short values repeat endlessly (statuses, codes, amounts): those are looked at once per value."""
        value = field.value
        memo = (id(detectors), value) if len(value) <= _MAX_REMEMBERED_VALUE else None
        found = self._values.get(memo) if memo else None
        if found is None:
            found = tuple((d, _PER_FIELD if d.candidate_reads_field else d.candidate(value, field)) for d in detectors)
            found = tuple(pair for pair in found if pair[1] is not None)
            if memo:
                if len(self._values) >= _MAX_VALUES:
                    self._values.clear()
                self._values[memo] = found
        for det, cand in found:
            if cand is _PER_FIELD and (cand := det.candidate(value, field)) is None:
                continue
            yield det, cand

    def _whole_value(self, field: Field) -> list[Finding]:
        hits = []
        for det, cand in self._candidates(self._detectors(field), field):
            conf = det.confirm(cand, field)
            if conf >= self.min_confidence:
                hits.append(Finding(det.type, field.part, field.path, round(conf, 2), field.value))
        return hits

    def _spans(self, text: str) -> tuple:
        """(detector, start, end) of every match of every detector's text pattern. They depend on
        the text alone, and texts repeat (descriptions, templates): found once per text."""
        spans = self._text_spans.get(text)
        if spans is None:
            # a named group marks the value inside its cue
            spans = tuple((det, *(m.span(m.lastgroup) if m.lastgroup else m.span()))
                          for det in _TEXT_DETECTORS for m in det.text_pattern.finditer(text))
            if len(text) <= _MAX_CACHED_TEXT:
                if len(self._text_spans) >= _MAX_TEXTS:
                    self._text_spans.clear()
                self._text_spans[text] = spans
        return spans

    def _free_text(self, field: Field, ner: bool) -> list[Finding]:
        """Spans inside a longer value: patterns for every type, spaCy for names and places in prose."""
        text = field.value
        hits: list[Finding] = []
        taken: list[tuple[int, int]] = []

        def free(start: int, end: int) -> bool:
            return all(end <= a or start >= b for a, b in taken)

        def offer(det, start: int, end: int) -> None:
            span = text[start:end]
            sub = Field(field.part, field.path, field.key, span, field.record,
                        nearby=text[max(0, start - _WINDOW):start].lower() + " … " + text[end:end + 15].lower())
            cand = det.candidate(span, sub)
            if cand is None:
                return
            conf = det.confirm(cand, sub)
            if conf >= self.min_confidence:
                hits.append(Finding(det.type, field.part, field.path, round(conf, 2), span))
                taken.append((start, end))

        for det, start, end in self._spans(text):
            if free(start, end):
                offer(det, start, end)

        if ner and _NER_WORTHY.search(text):
            for label, start, end in nlp.entities(text):
                det = _BY_ENTITY.get(label)
                if det is None or not free(start, end):
                    continue
                conf = det.entity_confidence(text, start, end, field)
                if conf >= self.min_confidence:
                    hits.append(Finding(det.type, field.part, field.path, conf, text[start:end]))
                    taken.append((start, end))
        return hits
