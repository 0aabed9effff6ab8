//! The API as a contract: the OpenAPI document, and the request trace travelling into the
//! event and its NATS headers.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_served_and_checked_in() {
    let generated = lifeline_gateway::api::openapi_json();
    let checked_in =
        std::fs::read_to_string(workspace_path("docs/openapi.json")).unwrap_or_default();
    if std::env::var_os("LIFELINE_BLESS").is_some() {
        std::fs::write(workspace_path("docs/openapi.json"), &generated)
            .expect("write docs/openapi.json");
    } else {
        assert!(
            checked_in == generated,
            "docs/openapi.json is stale: run `LIFELINE_BLESS=1 cargo test --test api openapi` and commit it"
        );
    }
    let document: Value = serde_json::from_str(&generated).expect("json");
    for path in [
        "/v1/orders",
        "/v1/runs/{run}/drops",
        "/v1/partners/{partner}/picks",
        "/v1/communities/{community}/summary",
    ] {
        assert!(document["paths"][path].is_object(), "{path} documented");
    }
    // Every response body has a named schema, not a bare object.
    let mut untyped = Vec::new();
    for (path, methods) in document["paths"].as_object().expect("paths") {
        for (method, operation) in methods.as_object().expect("methods") {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                let schema = &response["content"]["application/json"]["schema"];
                if !schema.is_null() && schema["$ref"].as_str().is_none() {
                    untyped.push(format!("{method} {path} {status}: {schema}"));
                }
            }
        }
    }
    assert!(
        untyped.is_empty(),
        "response bodies without a schema: {untyped:#?}"
    );
    let world = World::start().await;
    let response = reqwest::get(format!("{}/openapi.json", world.client.base))
        .await
        .expect("http");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("body"), generated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_trace_travels_in_the_event_and_its_nats_headers() {
    let world = World::start().await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = world
        .client
        .http
        .post(format!("{}/v1/orders", world.client.base))
        .bearer_auth(RESIDENT)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&veg_order())
        .send()
        .await
        .expect("http");
    assert_eq!(response.status().as_u16(), 202);
    let body: Value = response.json().await.expect("json");
    let sequence = body["stream_sequence"].as_u64().expect("sequence");
    let stream = world
        .harness
        .jetstream
        .get_stream(lifeline_events::EVENT_STREAM)
        .await
        .expect("stream");
    let message = stream.get_raw_message(sequence).await.expect("stored");
    let envelope = lifeline_events::Envelope::decode(&message.payload).expect("event");
    assert_eq!(envelope.correlation_id.simple().to_string(), trace);
    let header = message
        .headers
        .get("traceparent")
        .expect("traceparent header")
        .to_string();
    assert!(header.starts_with(&format!("00-{trace}-")), "{header}");
}
