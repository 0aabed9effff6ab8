//! Shortages, as staff and partners meet them: orders beyond the stock answer what is
//! short, the partner's stock view and the metric show what waits, and a restock fills
//! exactly the waiting orders, in line.

use super::*;

fn insulin_row(body: &Value) -> Value {
    body["stock"]
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["item"] == "med-insulin"))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn waiting_metric(world: &World) -> Option<f64> {
    let (_, text) = world.up.get("/metrics").await?;
    let wanted =
        "lifeline_inventory_shortfall_waiting_items{item=\"med-insulin\",partner=\"yonghui\"} ";
    text.lines()
        .find_map(|line| line.strip_prefix(wanted))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_beyond_the_stock_answer_short_and_a_restock_fills_them() {
    let world = World::start().await;
    let c = &world.client;
    let (_, stock) = c.get("/v1/partners/yonghui/stock", YONGHUI).await;
    let available = insulin_row(&stock)["available"]
        .as_u64()
        .expect("insulin is stocked in the seeds");
    // Two more insulin orders than there is insulin (the story: 14 orders, 12 in stock).
    let mut short = Vec::new();
    for n in 0..available + 2 {
        let (status, placed) = c
            .post(
                "/v1/orders",
                STAFF,
                json!({"household": HOUSEHOLD, "partner": "yonghui", "lines": [{"item": "med-insulin", "quantity": 1}]}),
            )
            .await;
        assert_eq!(status, 202, "{placed}");
        assert_eq!(placed["priority"], "urgent");
        let line = &placed["lines"][0];
        assert_eq!(line["item"], "med-insulin", "order {n}: {placed}");
        assert_eq!(line["requested"], 1);
        if line["short"] == 1 {
            assert_eq!(line["reserved"], 0);
            short.push(placed["order"].as_str().expect("id").to_owned());
        } else {
            assert_eq!((&line["reserved"], &line["short"]), (&json!(1), &json!(0)));
        }
    }
    assert_eq!(short.len(), 2, "exactly the last two are short");

    let (_, stock) = c.get("/v1/partners/yonghui/stock", YONGHUI).await;
    let row = insulin_row(&stock);
    assert_eq!(
        (&row["available"], &row["waiting"], &row["waiting_orders"]),
        (&json!(0), &json!(2), &json!(2)),
        "{row}"
    );
    assert_eq!(waiting_metric(&world).await, Some(2.0));

    let (status, body) = c
        .post(
            "/v1/partners/yonghui/stock",
            YONGHUI,
            json!({"item": "med-insulin", "quantity": 2}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let row = world
        .until(
            "the restock fills the queue",
            |b| insulin_row(&b)["waiting"] == 0,
            "/v1/partners/yonghui/stock",
            YONGHUI,
        )
        .await;
    let row = insulin_row(&row);
    assert_eq!(
        (&row["available"], &row["waiting_orders"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(waiting_metric(&world).await, Some(0.0));
    // The two short orders now hold their insulin: the partner can pick them in full.
    for order in &short {
        let pick = json!({"order": order, "lines": [{"item": "med-insulin", "ordered": 1, "outcome": "picked", "picked": 1}]});
        let (status, body) = c.post("/v1/partners/yonghui/picks", YONGHUI, pick).await;
        assert_eq!(status, 202, "{order}: {body}");
    }
}
