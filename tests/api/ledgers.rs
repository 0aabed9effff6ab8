//! The keepers' vulnerable-household lists: staff upload the residents' committee's and
//! the property office's CSV, read every household on one list and not another and every
//! flag that differs, and settle the registry's flags, one event per change.

use super::*;

/// A dialysis household in the seeds, and one with no flag.
const DIALYSIS: &str = "tianlun-b01-u5-0502";
const PLAIN: &str = HOUSEHOLD;

async fn upload(world: &World, ledger: &str, content_type: &str, csv: &str) -> (u16, Value) {
    let c = &world.client;
    let response = c
        .http
        .post(format!(
            "{}/v1/communities/tianlun/ledgers/{ledger}",
            c.base
        ))
        .bearer_auth(STAFF)
        .header("content-type", content_type)
        .body(csv.to_owned())
        .send()
        .await
        .expect("http");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn discrepancy<'a>(report: &'a Value, household: &str) -> Option<&'a Value> {
    report["discrepancies"]
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["household"] == household)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledgers_are_cross_checked_and_the_registry_keeps_the_answer() {
    let world = World::start().await;
    let c = &world.client;
    // The committee lists the dialysis household as also elderly alone, and a household
    // the registry has no flag for; the property office lists only the dialysis one.
    let committee = format!(
        "name,household,phone,vulnerabilities\n\
         Wang,{DIALYSIS},13800000000,dialysis;elderly_alone\n\
         Li,{PLAIN},,pregnant\n"
    );
    let (status, body) = upload(&world, "residents_committee", "text/csv", &committee).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["households"], 2);
    let office = format!("household,vulnerabilities\n{DIALYSIS},dialysis\n");
    let (status, body) = upload(
        &world,
        "property_office",
        "text/csv; charset=utf-8",
        &office,
    )
    .await;
    assert_eq!(status, 202, "{body}");

    let path = "/v1/communities/tianlun/ledgers/reconciliation";
    let report = world
        .until(
            "both ledgers are in",
            |b| b["ledgers"].as_array().is_some_and(|l| l.len() == 2),
            path,
            STAFF,
        )
        .await;
    let dialysis = discrepancy(&report, DIALYSIS).expect("flags differ");
    assert_eq!(dialysis["flags_differ"], true, "{dialysis}");
    assert_eq!(dialysis["missing_from"], json!([]));
    assert_eq!(dialysis["registry"], json!(["dialysis"]));
    let plain = discrepancy(&report, PLAIN).expect("on one list only");
    assert_eq!(plain["missing_from_registry"], true, "{plain}");
    assert_eq!(plain["missing_from"], json!(["property_office"]));
    // Registry households on neither list are reported missing from both.
    let other = report["discrepancies"]
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["household"] != DIALYSIS && d["household"] != PLAIN)
        .expect("the seeds flag more households than the lists name");
    assert_eq!(
        other["missing_from"],
        json!(["residents_committee", "property_office"])
    );

    // Staff settle: the plain household is pregnant. One event; the report moves.
    let settle = format!("/v1/communities/tianlun/households/{PLAIN}/vulnerabilities");
    let before = world.harness.head().await;
    let (status, body) = c
        .post(&settle, STAFF, json!({"vulnerabilities": ["pregnant"]}))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(world.harness.head().await, before + 1);
    let report = world
        .until(
            "the registry has the flag",
            |b| discrepancy(&b, PLAIN).is_some_and(|d| d["missing_from_registry"] == false),
            path,
            STAFF,
        )
        .await;
    assert_eq!(
        discrepancy(&report, PLAIN).expect("still off the office's list")["registry"],
        json!(["pregnant"])
    );

    world
        .refuses(vec![
            refused(
                "the same flags again",
                Some(STAFF),
                settle.clone(),
                json!({"vulnerabilities": ["pregnant"]}),
                409,
                "no_change",
            ),
            refused(
                "an operator reads, does not settle",
                Some(OPERATOR),
                settle,
                json!({"vulnerabilities": []}),
                403,
                "forbidden",
            ),
            refused(
                "a ledger sent as JSON",
                Some(STAFF),
                "/v1/communities/tianlun/ledgers/property_office",
                json!({"household": DIALYSIS}),
                415,
                "unsupported_media_type",
            ),
            refused(
                "a keeper lifeline does not know",
                Some(STAFF),
                "/v1/communities/tianlun/ledgers/neighbours",
                json!({}),
                404,
                "not_found",
            ),
        ])
        .await;
    for (csv, code) in [
        ("who,flags\nx,y\n".to_owned(), "invalid_ledger"),
        (
            format!("household,vulnerabilities\n{DIALYSIS},vampire\n"),
            "invalid_ledger",
        ),
        ("household\nnobody-here\n".to_owned(), "unknown_household"),
        (
            "household\nhuangtugang-bungalow-east-l01-0001\n".to_owned(),
            "unknown_household",
        ),
    ] {
        let before = world.harness.head().await;
        let (status, body) = upload(&world, "volunteer_group", "text/csv", &csv).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some(code)),
            "{csv}: {body}"
        );
        assert_eq!(world.harness.head().await, before, "nothing appended");
    }
}
