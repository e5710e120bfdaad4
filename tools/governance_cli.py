"""The CLI's governance commands: held challengers (`models pending`,
`models approve`, `models reject`), labellers' quarantine (`labellers`) and
the trusted evaluation set (`trusted-set`). Registered by tools.cli."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared import wiring
from shared.errors import ValidationError
from shared.governance import approvals, quarantine, trusted_set
from shared.governance.labellers import labels_behind_change
from shared.models.loading import load_version

MODEL_ACTIONS = ("pending", "approve", "reject")


def _output(document, text):
    from tools.output import Output

    return Output(document, text)


def _publisher():
    settings = wiring.settings()
    bus = wiring.event_bus()
    return lambda data, attributes: bus.publish(settings.model_promoted_topic, data, attributes)


def _with_drivers(document: dict) -> dict:
    """The pending document with the callers whose labels drove the change."""
    window = document.get("training_window") or {}
    if not window.get("start") or not document.get("expected_version"):
        return dict(document, callers=[])
    store = wiring.artifact_store()
    predictions = quarantine.labels_without_quarantined(wiring.prediction_store(), wiring.metadata_store())
    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    callers = labels_behind_change(predictions, load_version(store, document["expected_version"]),
                                   load_version(store, document["version"]), parse(window["start"]),
                                   parse(window["end"]))
    return dict(document, callers=callers)


def command_models(args):
    metadata = wiring.metadata_store()
    if args.action == "pending":
        pending = [_with_drivers(document) for document in approvals.list_pending(metadata)]
        text = []
        for item in pending:
            text.append(f"{item['version']}  would replace {item['expected_version']}  (run {item['run_id']}, "
                        f"held {item['created_at']})")
            text += [f"  held: {reason}" for reason in item["held_because"]]
            for name, measured in item["change"].items():
                regions = ", ".join(f"{region} ×{count}" for region, count in list(measured["regions"].items())[:5])
                text.append(f"  {name}: {measured['changed']} of {measured['rows']} answers change"
                            + (f" ({regions})" if regions else ""))
            text += [f"  labels from {c['caller']}: {c['labels']}, {c['labels_behind_change']} behind the change"
                     for c in item["callers"][:10]]
        return _output(pending, text or ["no challenger waits for approval"])
    if args.action == "approve":
        document = approvals.approve(args.version, by=args.by, store=wiring.artifact_store(), metadata=metadata,
                                     publish=_publisher())
        text = [f"{args.version} {document['status']} by {document['decided_by']}"]
        if document.get("closing_reason"):
            text.append(document["closing_reason"])
        return _output(document, text)
    document = approvals.reject(args.version, by=args.by, reason=args.reason, metadata=metadata)
    return _output(document, [f"{args.version} rejected by {document['decided_by']}: {document['reason']}"])


def _time(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"--from must be ISO 8601 (e.g. 2026-01-01T00:00:00Z), got {text!r}",
                              field="from") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def command_labellers(args):
    metadata = wiring.metadata_store()
    if args.action == "quarantine":
        document = quarantine.quarantine(metadata, args.caller, since=_time(args.since), by=args.by,
                                         reason=args.reason or "")
        return _output(document, [f"{document['caller']}: labels from {document['since']} on are set aside "
                                  "(kept for audit; excluded from training, drift and evaluation)"])
    if args.action == "lift":
        document = quarantine.lift(metadata, args.caller, by=args.by)
        return _output(document, [f"{document['caller']}: quarantine lifted; its labels count again"])
    if args.action == "agreement":
        from shared.governance.labellers import labeller_agreement
        from shared.models import registry

        store = wiring.artifact_store()
        pointer, _ = registry.read_champion(store)
        if pointer is None:
            return _output({}, ["no champion yet"])
        champion = load_version(store, pointer["version"])
        end = datetime.now(timezone.utc)
        predictions = quarantine.labels_without_quarantined(wiring.prediction_store(), metadata)
        result = labeller_agreement(predictions.iter_outcomes_recorded(end - timedelta(hours=args.hours), end),
                                    champion.predict_labels)
        text = [f"{'!' if v['flagged'] else ' '} {caller}: {v['labels']} labels, agrees with the champion "
                f"{v['agreement_with_champion']:.0%}, with peers "
                + ("n/a" if v["agreement_with_peers"] is None else f"{v['agreement_with_peers']:.0%}")
                for caller, v in result["callers"].items()]
        return _output(result, (text + ["(! far below its peers)"]) if text else ["no labels in the window"])
    documents = quarantine.list_quarantines(metadata)
    return _output(documents, [f"{d['caller']}: {d['status']} since {d['since']}" for d in documents]
                   or ["no caller is quarantined"])


def command_trusted_set(args):
    store = wiring.artifact_store()
    if args.action == "upload":
        from tools.training_cli import load_training_file

        X, y = load_training_file(args.path)
        document = trusted_set.upload(store, X, y, by=args.by)
        return _output(document, [f"trusted evaluation set {document['version']} ({document['rows']} rows) is "
                                  "current; the next promotions are checked against it"])
    _, _, description = trusted_set.load(store)
    return _output(description, [f"{description['source']} {description['version']}: {description['rows']} rows"])


def register(command, actions, action, models_group) -> None:
    """Add the governance parsers to tools.cli's parser."""
    action(models_group, "pending", "challengers held by change control: what would change, whose labels drove it")
    approve = action(models_group, "approve", "promote a held challenger (exactly once; audited)")
    approve.add_argument("version", metavar="VERSION")
    approve.add_argument("--by", required=True, metavar="NAME", help="who approves, for the audit")
    reject = action(models_group, "reject", "refuse a held challenger (audited)")
    reject.add_argument("version", metavar="VERSION")
    reject.add_argument("--by", required=True, metavar="NAME", help="who rejects, for the audit")
    reject.add_argument("--reason", required=True, help="why, for the audit")
    labellers = actions(command("labellers", "quarantine a caller's labels, lift it, see who agrees with whom",
                                command_labellers))
    action(labellers, "list", "quarantined callers")
    quarantine_parser = action(labellers, "quarantine", "set a caller's labels aside from a time on")
    quarantine_parser.add_argument("caller", metavar="CALLER", help="the caller's email (or anonymous)")
    quarantine_parser.add_argument("--from", dest="since", metavar="TIME", help="ISO 8601 (default now)")
    quarantine_parser.add_argument("--by", required=True, metavar="NAME")
    quarantine_parser.add_argument("--reason")
    lift_parser = action(labellers, "lift", "count a quarantined caller's labels again")
    lift_parser.add_argument("caller", metavar="CALLER")
    lift_parser.add_argument("--by", required=True, metavar="NAME")
    agreement = action(labellers, "agreement", "each caller's agreement with the champion and its peers")
    agreement.add_argument("--hours", type=float, default=24.0, help="window ending now (default 24)")
    trusted = actions(command("trusted-set", "the trusted evaluation set change control checks against",
                              command_trusted_set))
    action(trusted, "show", "the current trusted set")
    upload = action(trusted, "upload", "a curated CSV or Parquet (features and label) becomes the current set")
    upload.add_argument("path", metavar="PATH")
    upload.add_argument("--by", required=True, metavar="NAME")
