"""The Genesys Cloud simulator answers like the real API, over real HTTP."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import FIXTURES, eventually

from devstack.genesys_sim import GenesysSimulator
from devstack.process import ChildServer, free_port
from devstack.sim_admin import (
    ANALYTICS_DETAILS,
    GET_CONVERSATION,
    PATCH_ATTRIBUTES,
    TOKEN,
    SimAdmin,
)

CONVERSATION = json.loads((FIXTURES / "genesys-get-conversation.json").read_text())
TOO_MANY = json.loads((FIXTURES / "genesys-429-response.json").read_text())
CONV_ID = CONVERSATION["id"]
CUSTOMER = CONVERSATION["participants"][0]["id"]
ININ_HEADERS = ("inin-ratelimit-allowed", "inin-ratelimit-count", "inin-ratelimit-reset")


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token_for(sim: GenesysSimulator) -> str:
    response = requests.post(
        f"{sim.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(sim.config.client_id, sim.config.client_secret)},
        timeout=5,
    )
    assert response.status_code == 200
    token: str = response.json()["access_token"]
    return token


def api(sim: GenesysSimulator, method: str, path: str, token: str, **kw: Any) -> requests.Response:
    return requests.request(
        method, f"{sim.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5, **kw
    )


@pytest.fixture()
def seeded(genesys_sim: GenesysSimulator, sim_admin: SimAdmin) -> str:
    sim_admin.seed_bodies([CONVERSATION])
    return token_for(genesys_sim)


def test_token_endpoint_issues_a_bearer_token_for_basic_client_credentials(
    genesys_sim: GenesysSimulator,
) -> None:
    response = requests.post(
        f"{genesys_sim.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(genesys_sim.config.client_id, "sim-secret-7f3a9c1e5b")},
        timeout=5,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86399
    assert body["access_token"]
    assert response.headers["inin-correlation-id"]


def test_token_endpoint_refuses_wrong_credentials_like_the_login_host(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin
) -> None:
    response = requests.post(
        f"{genesys_sim.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(genesys_sim.config.client_id, "wrong")},
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert sim_admin.stats().tokens_issued == 0


def test_get_conversation_answers_the_seeded_body_with_genesys_headers(
    genesys_sim: GenesysSimulator, seeded: str
) -> None:
    response = api(genesys_sim, "GET", f"/api/v2/conversations/{CONV_ID}", seeded)
    assert response.status_code == 200
    assert response.json() == CONVERSATION
    for header in (*ININ_HEADERS, "inin-correlation-id"):
        assert response.headers[header]
    assert response.headers["inin-ratelimit-count"] == "1"


def test_generated_conversation_has_customer_acd_and_agent(sim_admin: SimAdmin) -> None:
    conversation_id = str(uuid.uuid4())
    (body,) = sim_admin.seed(conversation_id)
    assert body["id"] == conversation_id
    assert [p["purpose"] for p in body["participants"]] == ["customer", "acd", "agent"]
    assert all(p["attributes"] == {} for p in body["participants"])


def test_unknown_conversation_is_404_in_genesys_error_format(
    genesys_sim: GenesysSimulator, seeded: str
) -> None:
    response = api(genesys_sim, "GET", f"/api/v2/conversations/{uuid.uuid4()}", seeded)
    assert response.status_code == 404
    body = response.json()
    assert {"message", "code", "status", "contextId"} <= body.keys()
    assert (body["code"], body["status"]) == ("not.found", 404)
    assert body["contextId"] == response.headers["inin-correlation-id"]


def test_auto_create_answers_any_uuid(genesys_sim: GenesysSimulator, sim_admin: SimAdmin) -> None:
    sim_admin.configure(auto_create=True)
    response = api(
        genesys_sim, "GET", f"/api/v2/conversations/{uuid.uuid4()}", token_for(genesys_sim)
    )
    assert response.status_code == 200
    assert len(response.json()["participants"]) == 3


def test_patch_merges_string_attributes_and_answers_202_empty(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    path = f"/api/v2/conversations/{CONV_ID}/participants/{CUSTOMER}/attributes"
    first = api(genesys_sim, "PATCH", path, seeded, json={"attributes": {"a": "1"}})
    second = api(genesys_sim, "PATCH", path, seeded, json={"attributes": {"b": "2"}})
    assert (first.status_code, first.content) == (202, b"")
    assert second.status_code == 202
    assert sim_admin.attributes(CONV_ID, CUSTOMER) == {"crmId": "12345", "a": "1", "b": "2"}
    history = sim_admin.attribute_history(CONV_ID)
    assert [h["attributes"] for h in history] == [{"a": "1"}, {"b": "2"}]
    assert {h["participantId"] for h in history} == {CUSTOMER}


def test_patch_with_a_non_string_value_is_400(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    path = f"/api/v2/conversations/{CONV_ID}/participants/{CUSTOMER}/attributes"
    response = api(genesys_sim, "PATCH", path, seeded, json={"attributes": {"n": 1}})
    assert response.status_code == 400
    assert response.json()["code"] == "bad.request"
    assert sim_admin.attribute_history(CONV_ID) == []


def test_missing_or_revoked_token_is_401(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    path = f"/api/v2/conversations/{CONV_ID}"
    assert requests.get(f"{genesys_sim.url}{path}", timeout=5).status_code == 401
    assert sim_admin.revoke_tokens() == 1
    response = api(genesys_sim, "GET", path, seeded)
    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_expired_token_is_401(genesys_sim: GenesysSimulator, sim_admin: SimAdmin) -> None:
    sim_admin.seed_bodies([CONVERSATION])
    sim_admin.configure(token_lifetime=0.2)
    token = token_for(genesys_sim)
    path = f"/api/v2/conversations/{CONV_ID}"
    # Waits on the simulator's own expiry, not on the clock and a margin.
    eventually(
        lambda: api(genesys_sim, "GET", path, token).status_code == 401,
        timeout=10,
        what="the token expires",
    )


def test_per_token_rate_limit_answers_429_like_genesys(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    sim_admin.configure(rate_limit=3, rate_window=30)
    path = f"/api/v2/conversations/{CONV_ID}"
    statuses = [api(genesys_sim, "GET", path, seeded).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api(genesys_sim, "GET", path, seeded)
    body = response.json()
    assert body["code"] == TOO_MANY["body"]["code"]
    assert body["message"].startswith("Rate limit exceeded the maximum. Retry the request in [")
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    assert response.headers["inin-ratelimit-allowed"] == "3"
    assert response.headers["inin-ratelimit-count"] == "5"
    assert sim_admin.stats().status(429) == 2


def test_advertised_allowance_can_differ_from_the_enforced_limit(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    sim_admin.configure(rate_limit=3, rate_window=30, advertised_limit=2)
    path = f"/api/v2/conversations/{CONV_ID}"
    responses = [api(genesys_sim, "GET", path, seeded) for _ in range(4)]
    # It says 2 and refuses only the 4th: what it advertises and what it enforces are apart.
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert {r.headers["inin-ratelimit-allowed"] for r in responses} == {"2"}
    assert [r.headers["inin-ratelimit-count"] for r in responses] == ["1", "2", "3", "4"]


def test_scripted_faults_come_first_then_normal_behaviour(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    sim_admin.script(CONV_ID, [503, {"status": 429, "retry_after": 4}])
    path = f"/api/v2/conversations/{CONV_ID}"
    responses = [api(genesys_sim, "GET", path, seeded) for _ in range(3)]
    assert [r.status_code for r in responses] == [503, 429, 200]
    assert responses[1].headers["Retry-After"] == "4"
    stats = sim_admin.stats()
    assert stats.endpoints[GET_CONVERSATION] == {"503": 1, "429": 1, "200": 1}
    assert stats.endpoints[TOKEN] == {"200": 1}


def test_deleted_conversation_is_404_for_good(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    sim_admin.delete(CONV_ID)
    path = f"/api/v2/conversations/{CONV_ID}"
    assert [api(genesys_sim, "GET", path, seeded).status_code for _ in range(2)] == [404, 404]


def test_reject_all_answers_every_api_call_503(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    sim_admin.configure(reject_all=True)
    path = f"/api/v2/conversations/{CONV_ID}/participants/{CUSTOMER}/attributes"
    assert api(genesys_sim, "GET", f"/api/v2/conversations/{CONV_ID}", seeded).status_code == 503
    assert api(genesys_sim, "PATCH", path, seeded, json={"attributes": {}}).status_code == 503
    assert sim_admin.stats().endpoints[PATCH_ATTRIBUTES] == {"503": 1}


def test_random_failures_follow_the_seed(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    def run() -> list[int]:
        sim_admin.configure(error_rate=0.5, seed=7)
        path = f"/api/v2/conversations/{CONV_ID}"
        return [api(genesys_sim, "GET", path, seeded).status_code for _ in range(12)]

    first, second = run(), run()
    assert first == second
    assert {s for s in first if s != 200} <= {500, 502, 503, 504}
    assert 200 in first and len(set(first)) > 1


def test_reset_forgets_counters_tokens_and_conversations(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    sim_admin.reset()
    stats = sim_admin.stats()
    assert (stats.requests, stats.tokens_issued, stats.tokens_active) == (0, 0, 0)
    assert api(genesys_sim, "GET", f"/api/v2/conversations/{CONV_ID}", seeded).status_code == 401


def test_serves_64_concurrent_keep_alive_connections(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    sim_admin.configure(latency_ms=300, rate_limit=1000)
    barrier = threading.Barrier(64)
    statuses: list[int] = []

    def call() -> None:
        with requests.Session() as session:
            barrier.wait()
            for _ in range(2):  # the second request reuses the kept-alive connection
                response = session.get(
                    f"{genesys_sim.url}/api/v2/conversations/{CONV_ID}",
                    headers={"Authorization": f"Bearer {seeded}"},
                    timeout=10,
                )
                statuses.append(response.status_code)

    threads = [threading.Thread(target=call) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 128
    assert sim_admin.stats().max_in_flight >= 64


def test_runs_as_a_module_with_cli_flags(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "devstack.genesys_sim", "--port", str(port), "--auto-create"]
    argv += ["--advertised-limit", "120"]
    server = ChildServer(argv, port, log=tmp_path / "sim.log")
    with server:
        admin = SimAdmin(f"http://127.0.0.1:{port}")
        config = admin.configure()
        assert config["auto_create"] is True
        assert config["advertised_limit"] == 120
        assert admin.stats().requests == 0
    assert server.process is not None
    assert server.process.returncode in (0, -15)


def test_main_rejects_unknown_flags() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devstack.genesys_sim", "--no-such-flag"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 2


# --- the analytics multi-get ------------------------------------------------------------

DETAILS = "/api/v2/analytics/conversations/details"


def details(sim: GenesysSimulator, token: str, *ids: str) -> requests.Response:
    return api(sim, "GET", DETAILS, token, params={"id": ",".join(ids)})


def test_analytics_details_shows_each_conversation_with_its_participants_by_purpose(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    other = str(uuid.uuid4())
    (generated,) = sim_admin.seed(other)
    response = details(genesys_sim, seeded, CONV_ID, other)
    assert response.status_code == 200
    for header in (*ININ_HEADERS, "inin-correlation-id"):
        assert response.headers[header]
    found = {c["conversationId"]: c for c in response.json()["conversations"]}
    assert found.keys() == {CONV_ID, other}
    for body in (CONVERSATION, generated):
        view = found[body["id"]]
        assert view["conversationStart"] == body["startTime"]
        assert view["conversationEnd"] == body["endTime"]
        assert [(p["participantId"], p["purpose"]) for p in view["participants"]] == [
            (p["id"], p["purpose"]) for p in body["participants"]
        ]
        assert all(isinstance(p["sessions"], list) for p in view["participants"])
        assert all("attributes" not in p for p in view["participants"])


def test_analytics_details_leaves_unknown_and_deleted_ids_out(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    deleted = str(uuid.uuid4())
    sim_admin.seed(deleted)
    sim_admin.delete(deleted)
    response = details(genesys_sim, seeded, str(uuid.uuid4()), CONV_ID, deleted)
    assert response.status_code == 200
    assert [c["conversationId"] for c in response.json()["conversations"]] == [CONV_ID]
    nothing = details(genesys_sim, seeded, str(uuid.uuid4()))
    assert (nothing.status_code, nothing.json().get("conversations", [])) == (200, [])


def test_analytics_details_answers_400_beyond_its_id_limit(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    sim_admin.configure(analytics_max_ids=3)
    ids = [str(uuid.uuid4()) for _ in range(4)]
    refused = details(genesys_sim, seeded, *ids)
    assert refused.status_code == 400
    body = refused.json()
    assert {"message", "code", "status", "contextId"} <= body.keys()
    assert (body["code"], body["status"]) == ("bad.request", 400)
    assert "at most 3" in body["message"]
    assert details(genesys_sim, seeded, *ids[:3]).status_code == 200
    assert sim_admin.stats().endpoints[ANALYTICS_DETAILS] == {"400": 1, "200": 1}


def test_analytics_details_shows_a_conversation_only_after_the_lag(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    sim_admin.configure(analytics_lag_seconds=1.0)
    fresh = str(uuid.uuid4())
    sim_admin.seed(fresh)
    assert details(genesys_sim, seeded, fresh).json().get("conversations", []) == []
    # The conversations API knows it at once.
    assert api(genesys_sim, "GET", f"/api/v2/conversations/{fresh}", seeded).status_code == 200
    eventually(
        lambda: details(genesys_sim, seeded, fresh).json().get("conversations", []) != [],
        timeout=10,
        what="analytics catches up with the conversation",
    )
    older = str(uuid.uuid4())
    sim_admin.seed(older, age_seconds=5.0)
    [view] = details(genesys_sim, seeded, older).json()["conversations"]
    assert view["conversationId"] == older


def test_analytics_details_shows_auto_created_conversations_after_the_lag(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin
) -> None:
    sim_admin.configure(auto_create=True)
    token = token_for(genesys_sim)
    first = str(uuid.uuid4())
    [view] = details(genesys_sim, token, first).json()["conversations"]
    assert view["conversationId"] == first
    assert [p["purpose"] for p in view["participants"]] == ["customer", "acd", "agent"]
    # The single GET sees the same conversation analytics created.
    body = api(genesys_sim, "GET", f"/api/v2/conversations/{first}", token).json()
    assert [p["id"] for p in body["participants"]] == [
        p["participantId"] for p in view["participants"]
    ]
    sim_admin.configure(analytics_lag_seconds=60.0)
    assert details(genesys_sim, token, str(uuid.uuid4())).json().get("conversations", []) == []


def test_analytics_details_needs_its_own_permission(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    sim_admin.configure(denied_permissions=["analytics:conversationDetail:view"])
    refused = details(genesys_sim, seeded, CONV_ID)
    assert refused.status_code == 403
    assert "analytics:conversationDetail:view" in refused.json()["message"]
    assert api(genesys_sim, "GET", f"/api/v2/conversations/{CONV_ID}", seeded).status_code == 200


def test_analytics_details_shares_the_token_rate_limit_and_is_counted_apart(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    sim_admin.configure(rate_limit=2, rate_window=30)
    assert api(genesys_sim, "GET", f"/api/v2/conversations/{CONV_ID}", seeded).status_code == 200
    assert details(genesys_sim, seeded, CONV_ID).status_code == 200
    limited = details(genesys_sim, seeded, CONV_ID)
    assert limited.status_code == 429
    assert limited.json()["code"] == TOO_MANY["body"]["code"]
    assert int(limited.headers["Retry-After"]) >= 1
    stats = sim_admin.stats()
    assert stats.endpoints[ANALYTICS_DETAILS] == {"200": 1, "429": 1}
    assert stats.count(GET_CONVERSATION) == 1
    assert stats.analytics_ids == 1


def test_analytics_details_without_a_token_is_401(genesys_sim: GenesysSimulator) -> None:
    response = requests.get(f"{genesys_sim.url}{DETAILS}", params={"id": CONV_ID}, timeout=5)
    assert response.status_code == 401


def test_admin_counts_the_single_gets_of_each_conversation(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    for _ in range(2):
        api(genesys_sim, "GET", f"/api/v2/conversations/{CONV_ID}", seeded)
    details(genesys_sim, seeded, CONV_ID)
    assert sim_admin.reads(CONV_ID) == 2


# --- the participants one's own events name ------------------------------------------------

END_EVENT = json.loads((FIXTURES / "genesys-conversation-end-event.json").read_text())
RECEIVED = json.loads((FIXTURES / "dlq-receive-message.json").read_text())


def participant_ids(sim: GenesysSimulator, conversation_id: str) -> list[str]:
    """The participants the API lists, as the conversation lookup sees them."""
    response = api(sim, "GET", f"/api/v2/conversations/{conversation_id}", token_for(sim))
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["participants"]]


def test_events_make_their_conversations_with_the_participants_they_name(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin
) -> None:
    body = END_EVENT["detail"]["eventBody"]

    learned = sim_admin.learn_events([END_EVENT])

    assert learned == {"created": 1, "participants_added": 0}
    conversation = sim_admin.conversation(body["conversationId"])
    customer = next(p for p in conversation["participants"] if p["purpose"] == "customer")
    assert customer["id"] == body["participantId"]
    token = token_for(genesys_sim)
    details = api(genesys_sim, "GET", "/api/v2/analytics/conversations/details", token,
                  params={"id": body["conversationId"]}).json()  # fmt: skip
    (analytics,) = details["conversations"]
    assert body["participantId"] in [p["participantId"] for p in analytics["participants"]]


def test_a_known_conversation_gains_the_participants_events_name(
    genesys_sim: GenesysSimulator, sim_admin: SimAdmin, seeded: str
) -> None:
    other = str(uuid.uuid4())
    event = {"detail": {"eventBody": {"conversationId": CONV_ID, "participantId": other}}}

    learned = sim_admin.learn_events([json.dumps(event)])  # as a DLQ message's body holds it

    assert learned == {"created": 0, "participants_added": 1}
    assert participant_ids(genesys_sim, CONV_ID)[0] == CUSTOMER
    assert other in participant_ids(genesys_sim, CONV_ID)


def test_auto_create_knows_the_participants_of_an_events_file(tmp_path: Path) -> None:
    events = tmp_path / "received.json"  # `aws sqs receive-message` output
    events.write_text(json.dumps(RECEIVED))
    body = json.loads(RECEIVED["Messages"][0]["Body"])["detail"]["eventBody"]
    port = free_port()
    argv = [sys.executable, "-m", "devstack.genesys_sim", "--port", str(port), "--auto-create",
            "--events", str(events)]  # fmt: skip
    with ChildServer(argv, port, log=tmp_path / "sim.log"):
        conversation = SimAdmin(f"http://127.0.0.1:{port}").conversation(body["conversationId"])
    assert body["participantId"] in [p["id"] for p in conversation["participants"]]
    assert (
        "1 conversations with the participants its events name"
        in (tmp_path / "sim.log").read_text()
    )


def test_help_shows_the_default_client_id_to_configure() -> None:
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("dlq-replay")), "genesys-sim", "--help"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip

    words = " ".join(shown.split())  # however argparse wraps it
    assert "--client-id CLIENT_ID the OAuth client id it accepts" in words
    assert "(GENESYS_CLIENT_ID) (default: sim-client-id)" in words
