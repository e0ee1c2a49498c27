#!/usr/bin/env python3
"""Regenerates the sample events (one per function, named by the template's logical IDs).

Kinesis records carry realistic 56-digit sequence numbers; data is base64 as Lambda delivers it.
Run: python3 events/generate.py
"""
import base64, json, pathlib, datetime

HERE = pathlib.Path(__file__).parent
ARRIVAL = datetime.datetime(2026, 11, 22, 10, 0, 0, tzinfo=datetime.timezone.utc).timestamp()
SEQ_BASE = 49590338271490256608559692538361571095921575989136588800


def kinesis_event(stream, records):
    out = []
    for i, (key, data) in enumerate(records):
        seq = str(SEQ_BASE + i * 7)
        raw = data if isinstance(data, bytes) else data.encode()
        out.append({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": key,
                "sequenceNumber": seq,
                "data": base64.b64encode(raw).decode(),
                "approximateArrivalTimestamp": ARRIVAL + i / 1000,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"shardId-000000000000:{seq}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/tally-function-role",
            "awsRegion": "us-east-1",
            "eventSourceARN": f"arn:aws:kinesis:us-east-1:123456789012:stream/{stream}",
        })
    return {"Records": out}


def s3_notification(keys):
    """An S3 event notification of objects created in the archive bucket (keys URL-encoded)."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-22T10:01:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "tally-archivebucket", "arn": "arn:aws:s3:::tally-archivebucket"},
               "object": {"key": key, "size": 1024}},
    } for key in keys]}


def sqs_message(message_id, body):
    return {
        "messageId": message_id,
        "receiptHandle": "AQEB" + message_id.replace("-", ""),
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795341660000",
                       "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1795341660001"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:tally-LakeQueue",
        "awsRegion": "us-east-1",
    }


def http_get(path, query=None, route=None, params=None):
    """An API Gateway HTTP API (payload 2.0) GET on its route (`GET <path>` unless given), with
    the route's path parameters."""
    query = query or {}
    route = route or f"GET {path}"
    raw_query = "&".join(f"{k}={v}" for k, v in query.items())
    event = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"accept": "application/json", "host": "127.0.0.1:5000", "user-agent": "curl/8.5.0"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "curl/8.5.0"},
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": route,
            "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795341600000,
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if params:
        event["pathParameters"] = params
    return event


def http_post(path, body, headers):
    """An API Gateway HTTP API (payload 2.0) POST, its body base64 when it is not text."""
    event = http_get(path)
    event["routeKey"] = event["requestContext"]["routeKey"] = f"POST {path}"
    event["requestContext"]["http"]["method"] = "POST"
    event["headers"].update(headers)
    if isinstance(body, bytes):
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"] = body
    return event


def firehose_transformation(stream, delivery, lines):
    """What Firehose sends its transformation Lambda: records of a Kinesis source, data base64."""
    return {
        "invocationId": "5f0e2b8c-1d3a-4c6e-9b7f-0a1b2c3d4e5f",
        "deliveryStreamArn": f"arn:aws:firehose:us-east-1:123456789012:deliverystream/{delivery}",
        "sourceKinesisStreamArn": f"arn:aws:kinesis:us-east-1:123456789012:stream/{stream}",
        "region": "us-east-1",
        "records": [{
            "recordId": f"4958{i:04d}",
            "approximateArrivalTimestamp": int(ARRIVAL * 1000) + i,
            "data": base64.b64encode(line.encode()).decode(),
            "kinesisRecordMetadata": {"shardId": "shardId-000000000000", "partitionKey": "dev-1",
                                      "approximateArrivalTimestamp": int(ARRIVAL * 1000) + i,
                                      "sequenceNumber": str(SEQ_BASE + i * 7), "subsequenceNumber": 0},
        } for i, line in enumerate(lines)],
    }


def app_event(event_id, event_type, attributes, device="dev-1", **extra):
    e = {"event_id": event_id, "event_type": event_type, "client_time": "2026-11-22T09:59:30.000Z",
         "device": {"id": device, "platform": "android", "os_version": "15", "model": "Pixel 9", "app_version": "4.2.0"},
         "user_id": "user-7", "session_id": "s-1", "attributes": attributes}
    e.update(extra)
    return e


def visit(cid, gndr, ts=None):
    v = {"cid": cid, "gndr": gndr}
    if ts:
        v["ts"] = ts
    return (cid, json.dumps(v))


# The seed's own input (seed 003's sample, kept in infra/demo/interactions.jsonl): its first 12
# lines, the truncated line that ends its sample, and an event that is not an Interaction (ignored
# by the rules).
SEED_INTERACTIONS = (HERE.parent / "infra/demo/interactions.jsonl").read_text().splitlines()[:12]
interactions = [(str(json.loads(l)["user_id"]), l) for l in SEED_INTERACTIONS]
interactions += [("1", "{"), ("3", json.dumps({"user_id": 3, "property_id": 2, "date": "2021-11-30 00:00:30", "event": "View"}))]

# The five real Meetup RSVPs (tests/fixtures), one of them twice (a producer that reconnected), a
# later version of the first with the response changed to "no", and one without a response.
REAL_RSVPS = (HERE.parent / "tests/fixtures/meetup_rsvp_sample.jsonl").read_text().splitlines()
later = json.loads(REAL_RSVPS[0])
later.update(response="no", mtime=later["mtime"] + 90_000)
no_response = json.loads(REAL_RSVPS[1])
del no_response["response"]
rsvps = [json.loads(l)["event"]["event_id"] for l in REAL_RSVPS]
rsvp_records = [(rsvps[i], l) for i, l in enumerate(REAL_RSVPS)]
rsvp_records += [rsvp_records[2], (rsvps[0], json.dumps(later)), (rsvps[1], json.dumps(no_response))]


def alert(rule, subject, count_field, count, key):
    return (str(subject), json.dumps({rule[1]: subject, count_field: count, "alert_id": f"{rule[0]}:{key}"}))


events = {
    # MODEL1: the latest visit by event time wins, even when it arrives first.
    "Model1Function": kinesis_event("VisitsStream", [
        visit("C124", "female", "2026-11-22T10:00:00Z"),
        visit("C124", "male", "2026-11-22T09:00:00Z"),
        visit("C125", "Male"),
        ("C126", "{not json"),
    ]),
    # MODEL2: most visits of all time; C125 is a tie, which answers female.
    "Model2Function": kinesis_event("VisitsStream", [
        visit("C124", "male", "2026-11-20T08:00:00Z"),
        visit("C124", "male", "2026-11-21T08:00:00Z"),
        visit("C124", "female", "2026-11-22T08:00:00Z"),
        visit("C125", "male", 1795341600000),
        visit("C125", "female", 1795341600001),
        visit("C126", "other"),
    ]),
    # MODEL3: most visits in the last WindowDays days; the 2026-11-01 visits are outside it.
    "Model3Function": kinesis_event("VisitsStream", [
        visit("C124", "male", "2026-11-01T08:00:00Z"),
        visit("C124", "male", "2026-11-01T09:00:00Z"),
        visit("C124", "female", "2026-11-21T08:00:00Z"),
        visit("C125", "female"),
        ("C126", b"\xff\xfe not utf-8"),
    ]),
    # 11 interactions of user 1 and 12 on property 1 in one minute: each rule holds once.
    "PaidUserFunction": kinesis_event("InteractionsStream", interactions),
    "PropertyStatusFunction": kinesis_event("InteractionsStream", interactions),
    "PossibleBrokerFunction": kinesis_event("InteractionsStream", interactions),
    "ResultsWriterFunction": kinesis_event("GenderResultsStream", [
        ("C124", json.dumps({"_id": "C124_MODEL2", "model": "MODEL2", "cid": "C124", "gndr": "male", "male": 2, "female": 1,
                             "rev": 3, "as_of": "2026-11-22T10:00:01Z", "state": {"counts": {"all": {"male": 2, "female": 1}}}})),
        ("C124", json.dumps({"_id": "C124_MODEL2", "model": "MODEL2", "cid": "C124", "gndr": "female", "male": 1, "female": 1,
                             "rev": 2, "as_of": "2026-11-22T10:00:00Z", "state": {"counts": {"all": {"male": 1, "female": 1}}}})),
        ("C124", json.dumps({"_id": "C124_MODEL1", "model": "MODEL1", "cid": "C124", "gndr": "female", "rev": 1,
                             "as_of": "2026-11-22T10:00:00Z",
                             "state": {"latest": {"ts": "2026-11-22T10:00:00Z", "arrival": "056:49590338271490256608559692538361571095921575989136588800", "gndr": "female"}}})),
        ("C999", json.dumps({"_id": "C999_MODEL2", "model": "MODEL2"})),
    ]),
    # S3 notifications of an archived object and a dead letter, as SQS delivers them.
    "LakeWriterFunction": {"Records": [
        sqs_message("8b3f1c2e-0d1a-4a6b-9f3e-2c1d0e9f8a71", s3_notification([
            "raw/visits/dt%3D2026-11-22/tally-VisitsArchiveDeliveryStream-1-2026-11-22-10-01-00-3f2a9d64-1c0b-4e8f-a7d2-5b6c9e0f1a2b.gz",
        ])),
        sqs_message("5e2d8a40-7c3b-4f19-b6a5-0e1f2d3c4b5a", s3_notification([
            "dead-letter/MODEL1/shardId-000000000000/49590338271490256608559692538361571095921575989136588800.json",
        ])),
    ]},
    # RSVPs of stream.meetup.com's shape: five real ones, a duplicate, a later version, one bad.
    "RsvpStatsFunction": kinesis_event("RsvpStream", rsvp_records),
    # Alerts of the paid-user rule: one of them published twice (after a crash), one of no rule.
    "DashboardFeedFunction": kinesis_event("PaidUserStream", [
        alert(("paid_user", "user"), 1, "interactions_count", 9, 1),
        alert(("paid_user", "user"), 2, "interactions_count", 9, 2),
        alert(("paid_user", "user"), 1, "interactions_count", 9, 1),
        alert(("no_such_rule", "user"), 3, "interactions_count", 9, 3),
    ]),
    "LiveApiFunction": http_get("/api/v1/rsvp/stats"),
    # An SDK's batch: three events, one of an unknown type (listed in `rejected`, index 1).
    "CollectFunction": http_post("/collect", json.dumps([
        app_event("0b6f3f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "app_open", {"launch_source": "icon"}),
        app_event("1c7a4b1f-2d3e-4f60-9b0c-1d2e3f4a5b6c", "app_crash", {}),
        app_event("2d8b5c20-3e4f-4071-8c1d-2e3f4a5b6c7d", "clip_play", {"clip_id": "clip-001"}),
    ]), {"content-type": "application/json", "x-api-key": "tk_sample_key_registered_by_the_test"}),
    # Events as /collect stamps them and one put directly; a repeat (SDK retry) and one invalid.
    "EventsMetricsFunction": kinesis_event("EventsStream", [
        ("dev-1", json.dumps(app_event("e-1", "screen_view", {"screen_name": "home"}, app_id="flyers-3f2a9c", app_name="Flyers", server_time="2026-11-22T10:00:00.000Z"))),
        ("dev-1", json.dumps(app_event("e-2", "click", {"screen_name": "home", "element_id": "card-1"}, app_id="flyers-3f2a9c", app_name="Flyers", server_time="2026-11-22T10:00:00.000Z"))),
        ("dev-1", json.dumps(app_event("e-2", "click", {"screen_name": "home", "element_id": "card-1"}, app_id="flyers-3f2a9c", app_name="Flyers", server_time="2026-11-22T10:00:05.000Z"))),
        ("dev-2", json.dumps(app_event("e-3", "search", {"query": "milk"}, device="dev-2"))),
        ("dev-2", json.dumps(app_event("e-4", "purchase", {"order_id": "o-1", "item_id": "i-1", "price": -1, "currency": "CAD"}, device="dev-2"))),
    ]),
    # The archive's router: a valid event, one of an unknown type, one not JSON.
    "EventsRouterFunction": firehose_transformation("tally-EventsStream", "tally-EventsArchiveDeliveryStream", [
        json.dumps(app_event("e-1", "screen_view", {"screen_name": "home"})),
        json.dumps(app_event("e-9", "app_crash", {})),
        "{\"event_id\":",
    ]),
    # Every other archive's transformation: a visit, and a line that is not JSON (kept whole).
    "ArchiveStampFunction": firehose_transformation("tally-VisitsStream", "tally-VisitsArchiveDeliveryStream", [
        visit("C124", "male", "2026-11-22T09:59:00Z")[1],
        "not json",
    ]),
    "GenderApiFunction": http_get(
        "/api/v1/getGender/C124", {"model": "MODEL2"}, "GET /api/v1/getGender/{cid}", {"cid": "C124"}
    ),
    # The ML step, as `tally clusters --clusters 4` invokes it (its schedule sends {}).
    "GroupClustersFunction": {"clusters": 4},
    # The extractor, as its schedule and `tally extract` invoke it.
    "CoreExtractorFunction": {},
    # The warehouse panel of one day (its schedule sends {}: today).
    "VendorOpensFunction": {"day": "2026-11-22"},
}

# The example pipeline: two views of a page in one minute, one of another page, one without a
# page (a dead letter).
events["ViewsFunction"] = kinesis_event("ViewsStream", [
    ("/home", json.dumps({"page": "/home", "at": "2026-11-22T09:59:05Z"})),
    ("/home", json.dumps({"page": "/home", "at": "2026-11-22T09:59:40Z"})),
    ("/pricing", json.dumps({"page": "/pricing", "at": "2026-11-22T09:59:41Z"})),
    ("?", json.dumps({"at": "2026-11-22T09:59:42Z"})),
])

for name, event in events.items():
    (HERE / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n")
    print(f"wrote events/{name}.json")
