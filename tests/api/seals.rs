//! Seals drive dispatch and the staff's board: a run goes wholly behind seals or nowhere
//! behind one, so the door-to-door group takes the sealed stops and anyone the rest; the
//! summary lists each sealed scope with the orders still on their way into it.

use super::*;

const OUTSIDE: &str = "tianlun-b01-u1-0101";

fn sealed_scopes(summary: &Value) -> Vec<(Value, u64)> {
    summary["sealed"]
        .as_array()
        .expect("sealed list")
        .iter()
        .map(|s| {
            (
                s["scope"].clone(),
                s["open_orders"].as_u64().expect("count"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_never_crosses_a_seal_and_the_summary_lists_sealed_scopes() {
    let world = World::start().await;
    let c = &world.client;
    let unit = json!({"level": "unit", "building": "tianlun-b07", "unit": "tianlun-b07-u8"});
    let (status, body) = c
        .post(
            "/v1/communities/tianlun/seals",
            STAFF,
            json!({"scope": unit, "sealed": true}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    world
        .until(
            "the seal is on the board",
            |b| b["sealed"].as_array().is_some_and(|s| !s.is_empty()),
            "/v1/communities/tianlun/summary",
            STAFF,
        )
        .await;

    // One arrival with an order behind the seal and one outside it: two runs.
    let orders = world.arrive_together(&[HOUSEHOLD, OUTSIDE]).await;
    let behind = world.stage_of(&orders[0], "on_run").await;
    let outside = world.stage_of(&orders[1], "on_run").await;
    assert_ne!(
        behind["run"], outside["run"],
        "a sealed stop and an open one never share a run"
    );
    // The supplies volunteer may take the open run.
    let open_run = outside["run"].as_str().expect("run");
    let (status, body) = c
        .post(
            &format!("/v1/runs/{open_run}/depart"),
            STAFF,
            json!({"courier": "vol-tianlun-008"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");

    let (status, summary) = c.get("/v1/communities/tianlun/summary", STAFF).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        sealed_scopes(&summary),
        vec![(unit.clone(), 1)],
        "{summary}"
    );

    // Lifted, it leaves the board.
    let (status, body) = c
        .post(
            "/v1/communities/tianlun/seals",
            STAFF,
            json!({"scope": unit, "sealed": false}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    world
        .until(
            "the lifted seal leaves the board",
            |b| b["sealed"].as_array().is_some_and(|s| s.is_empty()),
            "/v1/communities/tianlun/summary",
            STAFF,
        )
        .await;
}
