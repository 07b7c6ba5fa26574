#!/usr/bin/env python3
"""Validate every record on Clarity's topics the way a foreign (non-Rust) client would.

Reads each given topic from the beginning of every partition to its end as of the start of the
run, and checks every record against the public contract (docs/events.md):

* the value is a CloudEvents 1.0 record in structured JSON mode;
* the record (envelope and `data`) is valid against the published JSON Schema of its `type`
  (docs/schemas/events/<type>.json), whose `$id` is the record's `dataschema`;
* the Kafka key is the record's `subject`, and `id` is `<Aggregate>/<subject>/<sequence>`;
* per stream (`subject` + `streamkind`): no duplicates, no records out of order, no gaps in
  `sequence`.

Prints one line per problem to stderr (the record's coordinates, the JSON pointer into the
record, the schema location and the error), then a JSON summary to stdout. Exits 1 when any
record or stream is invalid, 2 when the run itself failed (broker unreachable, no schemas).

    validate_topics.py --bootstrap-servers 127.0.0.1:9092 clarity.sessions.v1 clarity.assessments.v1
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from jsonschema import Draft202012Validator, FormatChecker

DEFAULT_SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "events"
# CloudEvents 1.0: attribute names are lower-case ASCII letters and digits.
ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]+$")
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")
STRING_ATTRIBUTES = ("id", "source", "type", "subject", "time", "datacontenttype", "dataschema")
# Only the first problems are kept in the summary; every one is printed to stderr.
MAX_ERRORS_IN_SUMMARY = 200


@dataclass
class Problem:
    """One thing wrong with one record (or with a stream)."""

    kind: str
    message: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    type: str | None = None
    pointer: str | None = None
    schema_path: str | None = None

    def line(self) -> str:
        where = f"{self.topic}/{self.partition}@{self.offset}" if self.topic else "stream"
        parts = [f"INVALID [{self.kind}] {where}"]
        if self.key is not None:
            parts.append(f"key={self.key}")
        if self.type:
            parts.append(f"type={self.type}")
        if self.pointer is not None:
            parts.append(f"at {self.pointer or '/'}")
        if self.schema_path is not None:
            parts.append(f"(schema {self.schema_path})")
        return " ".join(parts) + f": {self.message}"


@dataclass
class Stream:
    """What has been seen of one stream: the highest `sequence` and the ones still missing."""

    last: int = 0
    missing: set[int] = field(default_factory=set)
    # The first record of a stream may be missing legitimately when retention removed the start
    # of its partition.
    truncated: bool = False


@dataclass
class Report:
    records: int = 0
    invalid_records: int = 0
    by_type: Counter = field(default_factory=Counter)
    by_topic: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def add(self, problem: Problem) -> None:
        self.counts[problem.kind] += 1
        self.problems.append(problem)
        print(problem.line(), file=sys.stderr)


def pointer(path) -> str:
    """A JSON pointer (RFC 6901) from a jsonschema path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def load_schemas(directory: Path) -> dict[str, tuple[dict, Draft202012Validator]]:
    """The published schemas by CloudEvents `type` (their `title`), with a validator each."""
    schemas = {}
    for path in sorted(directory.glob("*.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(schema, format_checker=FormatChecker())
        schemas[schema["title"]] = (schema, validator)
    return schemas


def check_cloudevent(record: object) -> list[tuple[str, str]]:
    """Structured-mode CloudEvents 1.0 rules: (JSON pointer, problem) pairs."""
    if not isinstance(record, dict):
        return [("", "the value is not a JSON object")]
    problems = []
    for name in REQUIRED_ATTRIBUTES:
        if name not in record:
            problems.append(("", f"required CloudEvents attribute `{name}` is missing"))
    if record.get("specversion") != "1.0":
        problems.append(("/specversion", f"specversion is {record.get('specversion')!r}, not '1.0'"))
    for name in STRING_ATTRIBUTES:
        if name in record and not isinstance(record[name], str):
            problems.append((f"/{name}", f"`{name}` must be a string"))
        elif name in ("id", "source", "type") and record.get(name) == "":
            problems.append((f"/{name}", f"`{name}` must not be empty"))
    for name in record:
        if name not in ("data", "data_base64") and not ATTRIBUTE_NAME.match(name):
            problems.append((f"/{pointer([name])[1:]}", f"`{name}` is not a valid CloudEvents attribute name"))
    if "data" in record and "data_base64" in record:
        problems.append(("", "a record carries either `data` or `data_base64`, not both"))
    return problems


def check_record(msg, schemas, streams: dict, report: Report, truncated: bool) -> None:
    """Checks one record; `truncated` says its partition no longer starts at offset 0."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    key = msg.key().decode("utf-8", "replace") if msg.key() is not None else None
    at = dict(topic=topic, partition=partition, offset=offset, key=key)
    report.records += 1
    report.by_topic[topic] += 1
    problems_before = len(report.problems)

    try:
        record = json.loads(msg.value())
    except (TypeError, ValueError) as error:
        report.add(Problem("not_json", f"the value is not JSON: {error}", **at))
        report.invalid_records += 1
        return

    for where, problem in check_cloudevent(record):
        report.add(Problem("cloudevents", problem, pointer=where, **at))
    if not isinstance(record, dict):
        report.invalid_records += 1
        return

    ce_type = record.get("type")
    at["type"] = ce_type if isinstance(ce_type, str) else None
    report.by_type[str(ce_type)] += 1
    schema_entry = schemas.get(ce_type)
    if schema_entry is None:
        report.add(Problem("unknown_type", f"no published schema for type {ce_type!r}", **at))
    else:
        schema, validator = schema_entry
        if record.get("dataschema") != schema.get("$id"):
            report.add(Problem(
                "dataschema",
                f"dataschema {record.get('dataschema')!r} is not the $id of the schema of its type, {schema.get('$id')!r}",
                pointer="/dataschema", **at))
        for error in sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path)):
            report.add(Problem(
                "schema", error.message,
                pointer=pointer(error.absolute_path),
                schema_path=pointer(error.absolute_schema_path), **at))

    subject, kind, sequence = record.get("subject"), record.get("streamkind"), record.get("sequence")
    if key != subject:
        report.add(Problem("key", f"the Kafka key {key!r} is not the subject {subject!r}", pointer="/subject", **at))
    if isinstance(ce_type, str) and ce_type.startswith("clarity.") and isinstance(sequence, int):
        aggregate = ce_type.split(".")[1]
        expected_id = f"{aggregate}/{subject}/{sequence}"
        if record.get("id") != expected_id:
            report.add(Problem("id", f"id {record.get('id')!r} is not {expected_id!r}", pointer="/id", **at))
    if isinstance(subject, str) and isinstance(kind, str) and isinstance(sequence, int):
        check_sequence(streams, (subject, kind), sequence, report, at, truncated)

    if len(report.problems) > problems_before:
        report.invalid_records += 1


def check_sequence(streams: dict, stream_key, sequence: int, report: Report, at: dict, truncated: bool) -> None:
    """Duplicates, disorder and gaps within one stream (`subject` + `streamkind`)."""
    stream = streams.setdefault(stream_key, Stream(truncated=truncated))
    name = f"{stream_key[0]}/{stream_key[1]}"
    if sequence == stream.last + 1:
        stream.last = sequence
    elif sequence > stream.last + 1:
        if not (stream.last == 0 and stream.truncated):
            stream.missing.update(range(stream.last + 1, sequence))
        stream.last = sequence
    elif sequence in stream.missing:
        stream.missing.discard(sequence)
        report.add(Problem("out_of_order", f"stream {name}: sequence {sequence} arrived after {stream.last}", pointer="/sequence", **at))
    else:
        report.add(Problem("duplicate", f"stream {name}: sequence {sequence} was already seen (last {stream.last})", pointer="/sequence", **at))


def read_topics(args, schemas) -> Report:
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap_servers,
        # A throwaway group: nothing is committed, every run reads from the beginning.
        "group.id": f"clarity-foreign-validator-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    })
    report = Report()
    streams: dict = {}
    try:
        assignments, remaining, truncated = [], {}, set()
        for topic in args.topics:
            metadata = consumer.list_topics(topic, timeout=args.timeout)
            described = metadata.topics.get(topic)
            if described is None or described.error is not None or not described.partitions:
                raise SystemExit(f"topic {topic} not found: {described.error if described else 'no metadata'}")
            for partition in sorted(described.partitions):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=args.timeout, cached=False)
                if high > low:
                    assignments.append(TopicPartition(topic, partition, low))
                    remaining[(topic, partition)] = high
                    if low > 0:
                        truncated.add((topic, partition))
        consumer.assign(assignments)
        deadline = time.monotonic() + args.timeout
        while remaining:
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out reading; partitions not read to the end: {sorted(remaining)}")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == -191:  # _PARTITION_EOF
                    continue
                raise KafkaException(msg.error())
            tp = (msg.topic(), msg.partition())
            end = remaining.get(tp)
            if end is None or msg.offset() >= end:
                continue  # written after the run started
            check_record(msg, schemas, streams, report, tp in truncated)
            if msg.offset() + 1 >= end:
                del remaining[tp]
    finally:
        consumer.close()

    for (subject, kind), stream in sorted(streams.items()):
        for sequence in sorted(stream.missing):
            report.add(Problem("gap", f"stream {subject}/{kind}: sequence {sequence} is missing (last seen {stream.last})"))
    report.counts["streams"] = len(streams)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("topics", nargs="+", help="topics to read from the beginning")
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--schemas", type=Path, default=DEFAULT_SCHEMAS,
                        help="directory of the published event schemas (default: docs/schemas/events)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to read the topics to their end")
    args = parser.parse_args(argv)

    schemas = load_schemas(args.schemas)
    if not schemas:
        print(f"no schemas in {args.schemas}", file=sys.stderr)
        return 2
    try:
        report = read_topics(args, schemas)
    except (KafkaException, SystemExit) as error:
        print(f"validation did not run: {error}", file=sys.stderr)
        return 2

    problems = report.problems
    summary = {
        "topics": args.topics,
        "records": report.records,
        "valid_records": report.records - report.invalid_records,
        "invalid_records": report.invalid_records,
        "streams": report.counts.pop("streams", 0),
        "problems_by_kind": dict(sorted(report.counts.items())),
        "records_by_topic": dict(sorted(report.by_topic.items())),
        "records_by_type": dict(sorted(report.by_type.items())),
        "problems": [{k: v for k, v in vars(p).items() if v is not None} for p in problems[:MAX_ERRORS_IN_SUMMARY]],
    }
    print(json.dumps(summary, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
