//! Overload: past `--max-in-flight` requests, and `--queue-timeout-ms` of waiting, the API
//! answers 503 `overloaded` with `Retry-After` instead of queueing without limit; a refused
//! request appended nothing, and its retry with the same key is taken once.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_capacity_requests_are_refused_with_retry_after_and_retries_land_once() {
    let world = World::start_with(&["--max-in-flight", "1", "--queue-timeout-ms", "1"]).await;
    let c = &world.client;
    let before = world.harness.head().await;
    let send = |key: String| {
        let request = c
            .http
            .post(format!("{}/v1/orders", c.base))
            .bearer_auth(STAFF)
            .header("Idempotency-Key", key)
            .json(&veg_order());
        async move {
            let response = request.send().await.expect("http");
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, retry_after, body)
        }
    };
    let keys: Vec<String> = (0..48).map(|i| format!("burst-{i}")).collect();
    let answers = futures::future::join_all(keys.iter().cloned().map(send)).await;
    let mut refused = Vec::new();
    let mut accepted = 0;
    for (key, (status, retry_after, body)) in keys.iter().zip(&answers) {
        match status {
            202 => accepted += 1,
            503 => {
                assert_eq!(body["error"]["code"], "overloaded", "{body}");
                assert_eq!(retry_after.as_deref(), Some("1"));
                refused.push(key.clone());
            }
            other => panic!("{key}: {other} {body}"),
        }
    }
    assert!(
        !refused.is_empty(),
        "48 at once past one in flight: some refused"
    );
    assert_eq!(
        world.harness.head().await,
        before + accepted,
        "a refused request appended nothing"
    );
    // Each refused phone retries with its key, one at a time: taken once each.
    for key in &refused {
        let (status, _, body) = send(key.clone()).await;
        assert_eq!(status, 202, "{key}: {body}");
    }
    for key in keys.iter().take(3) {
        let (status, _, _) = send(key.clone()).await;
        assert_eq!(status, 202, "a retry of an accepted order answers again");
    }
    assert_eq!(world.harness.head().await, before + 48, "every order once");
    // Health is never refused.
    assert!(world.up.get("/healthz").await.is_some());
}
