//! The simulator seen as a client sees it: real HTTP on loopback.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use workshop_sim::{
    Child, Content, Counters, Fault, MAX_IDS_PER_CALL, SimItem, Storage, VPK_MAGIC, WorkshopSim,
};

const PNG_MAGIC: &[u8] = b"\x89PNG";

/// Posts a form to an API method, as left4me's client does.
async fn post(sim: &WorkshopSim, method: &str, form: &[(String, String)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!(
            "{}/ISteamRemoteStorage/{method}/v1/",
            sim.base_url()
        ))
        .form(form)
        .send()
        .await
        .unwrap()
}

fn id_form(count_key: &str, ids: &[u64]) -> Vec<(String, String)> {
    let mut form = vec![(count_key.to_owned(), ids.len().to_string())];
    for (i, id) in ids.iter().enumerate() {
        form.push((format!("publishedfileids[{i}]"), id.to_string()));
    }
    form
}

async fn details(sim: &WorkshopSim, ids: &[u64]) -> Vec<Value> {
    let response = post(sim, "GetPublishedFileDetails", &id_form("itemcount", ids)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["response"]["result"], 1);
    assert_eq!(body["response"]["resultcount"], ids.len());
    body["response"]["publishedfiledetails"]
        .as_array()
        .unwrap()
        .clone()
}

async fn collections(sim: &WorkshopSim, ids: &[u64]) -> Vec<Value> {
    let response = post(
        sim,
        "GetCollectionDetails",
        &id_form("collectioncount", ids),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["response"]["resultcount"], ids.len());
    body["response"]["collectiondetails"]
        .as_array()
        .unwrap()
        .clone()
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

fn file_url(entry: &Value) -> String {
    entry["file_url"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn details_answer_each_id_in_request_order() {
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem::vpk(101, 5_000));
    sim.add_item(SimItem {
        app_id: 730,
        filename: "skin.bin".to_owned(),
        content: Content::Bytes(b"not a map".to_vec()),
        ..SimItem::vpk(102, 0)
    });
    sim.add_item(SimItem {
        banned: true,
        ..SimItem::vpk(103, 10)
    });
    sim.add_collection(200, "My maps", &[Child::item(101)]);

    let entries = details(&sim, &[102, 999, 101, 200, 103]).await;
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e["publishedfileid"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["102", "999", "101", "200", "103"]);

    let map = &entries[2];
    assert_eq!(map["result"], 1);
    assert_eq!(map["consumer_app_id"], 550);
    assert_eq!(map["creator_app_id"], 550);
    assert_eq!(map["file_size"], "5000");
    assert_eq!(map["filename"], "myl4d2addons/map_101.vpk");
    assert_eq!(map["title"], "Map 101");
    assert_eq!(map["banned"], 0);
    assert_eq!(map["visibility"], 0);
    assert_eq!(map["tags"][0]["tag"], "Campaigns");
    assert!(map["time_updated"].is_u64() && map["time_created"].is_u64());
    assert!(map["creator"].is_string() && map["hcontent_file"].is_string());
    assert!(file_url(map).starts_with(&sim.base_url()));
    assert!(file_url(map).contains("/101/"));
    assert!(file_url(map).ends_with("/map_101.vpk"));

    assert_eq!(entries[0]["consumer_app_id"], 730);
    assert_eq!(entries[0]["file_size"], "9");
    assert_eq!(entries[4]["banned"], 1);

    let missing = entries[1].as_object().unwrap();
    assert_eq!(missing.len(), 2);
    assert_eq!(missing["result"], 9);

    let collection = &entries[3];
    assert_eq!(collection["result"], 1);
    assert_eq!(collection["title"], "My maps");
    assert_eq!(collection["file_size"], "0");
    assert_eq!(collection["file_url"], "");
    assert_eq!(collection["filename"], "");
    assert_eq!(collection["consumer_app_id"], 550);

    sim.remove_item(101);
    assert_eq!(details(&sim, &[101]).await[0]["result"], 9);

    let without_slash = reqwest::Client::new()
        .post(format!(
            "{}/ISteamRemoteStorage/GetPublishedFileDetails/v1",
            sim.base_url()
        ))
        .form(&id_form("itemcount", &[102]))
        .send()
        .await
        .unwrap();
    assert_eq!(without_slash.status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_and_malformed_calls_are_refused() {
    let sim = WorkshopSim::start().await.unwrap();
    let ids: Vec<u64> = (1..=MAX_IDS_PER_CALL as u64 + 1).collect();
    assert_eq!(details(&sim, &ids[..MAX_IDS_PER_CALL]).await.len(), 100);
    for method in ["GetPublishedFileDetails", "GetCollectionDetails"] {
        let key = if method == "GetCollectionDetails" {
            "collectioncount"
        } else {
            "itemcount"
        };
        let status = post(&sim, method, &id_form(key, &ids)).await.status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} with 101 ids");
    }

    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let malformed = [
        vec![pair("publishedfileids[0]", "1")],
        vec![pair("itemcount", "one"), pair("publishedfileids[0]", "1")],
        vec![pair("itemcount", "1"), pair("publishedfileids[0]", "abc")],
        vec![pair("itemcount", "2"), pair("publishedfileids[0]", "1")],
        vec![
            pair("itemcount", "1"),
            pair("publishedfileids[0]", "1"),
            pair("publishedfileids[1]", "2"),
        ],
        vec![pair("itemcount", "0")],
    ];
    for form in &malformed {
        let response = post(&sim, "GetPublishedFileDetails", form).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{form:?}");
    }
    let counters = sim.counters();
    assert_eq!(counters.bad_requests, 2 + malformed.len() as u64);
    assert_eq!(counters.details_calls, 1);
    assert_eq!(counters.ids_requested, 100);
}

#[tokio::test]
async fn collections_list_children_in_order() {
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem::vpk(1, 10));
    sim.add_item(SimItem::vpk(2, 10));
    sim.add_collection(20, "Inner", &[Child::item(2)]);
    sim.add_collection(10, "Outer", &[Child::item(1), Child::collection(20)]);
    sim.add_collection(30, "Empty", &[]);

    let entries = collections(&sim, &[10, 1, 404, 30, 20]).await;
    let outer = &entries[0];
    assert_eq!(outer["publishedfileid"], "10");
    assert_eq!(outer["result"], 1);
    let children = outer["children"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    assert_eq!(children[0]["publishedfileid"], "1");
    assert_eq!(children[0]["sortorder"], 1);
    assert_eq!(children[0]["filetype"], 0);
    assert_eq!(children[1]["publishedfileid"], "20");
    assert_eq!(children[1]["sortorder"], 2);
    assert_eq!(children[1]["filetype"], 2);

    let item = entries[1].as_object().unwrap();
    assert_eq!(item["result"], 1);
    assert!(!item.contains_key("children"));
    assert_eq!(entries[2]["result"], 9);
    assert!(!entries[3].as_object().unwrap().contains_key("children"));
    assert_eq!(entries[4]["children"][0]["publishedfileid"], "2");
}

#[tokio::test]
async fn cdn_serves_files_and_previews() {
    let sim = WorkshopSim::start().await.unwrap();
    let item = SimItem::vpk(7, 300_000);
    let content = item.content.clone();
    sim.add_item(item);
    sim.add_item(SimItem {
        content: Content::Bytes(b"plain bytes".to_vec()),
        ..SimItem::vpk(8, 0)
    });

    let entries = details(&sim, &[7, 8]).await;
    let response = get(&file_url(&entries[0])).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.content_length(), Some(300_000));
    let body = response.bytes().await.unwrap();
    assert_eq!(&body[..4], VPK_MAGIC);
    assert_eq!(body.as_ref(), content.bytes().as_slice());
    assert_eq!(
        get(&file_url(&entries[1]))
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        b"plain bytes"
    );

    let preview = get(entries[0]["preview_url"].as_str().unwrap()).await;
    assert_eq!(preview.status(), StatusCode::OK);
    assert!(preview.bytes().await.unwrap().starts_with(PNG_MAGIC));

    // Different seeds, different maps.
    let other = Content::Vpk {
        size: 300_000,
        seed: 8,
    };
    assert_ne!(other.bytes(), content.bytes());

    assert_eq!(
        sim.counters(),
        Counters {
            api_calls: 1,
            details_calls: 1,
            ids_requested: 2,
            downloads: 2,
            previews: 1,
            bytes_served: 300_000 + 11,
            ..Counters::default()
        }
    );
    sim.reset_counters();
    assert_eq!(sim.counters(), Counters::default());
}

#[tokio::test]
async fn an_update_moves_the_file_url() {
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem::vpk(7, 1_000));
    let before = details(&sim, &[7]).await.remove(0);
    let new = Content::Vpk {
        size: 2_000,
        seed: 99,
    };
    sim.update_item(7, new.clone());
    let after = details(&sim, &[7]).await.remove(0);

    assert_ne!(after["hcontent_file"], before["hcontent_file"]);
    assert_ne!(file_url(&after), file_url(&before));
    assert!(after["time_updated"].as_u64() > before["time_updated"].as_u64());
    assert_eq!(after["time_created"], before["time_created"]);
    assert_eq!(after["file_size"], "2000");
    let body = get(&file_url(&after)).await.bytes().await.unwrap();
    assert_eq!(body.as_ref(), new.bytes().as_slice());
    assert_eq!(
        get(&file_url(&before)).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn items_on_the_content_system_have_no_direct_file() {
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem {
        storage: Storage::PreviewAsFileUrl,
        filename: "myl4d2addons/packed".to_owned(),
        ..SimItem::vpk(1, 100)
    });
    sim.add_item(SimItem {
        storage: Storage::NoFileUrl,
        ..SimItem::vpk(2, 100)
    });
    let entries = details(&sim, &[1, 2]).await;
    assert_eq!(entries[0]["file_url"], entries[0]["preview_url"]);
    assert_eq!(entries[0]["file_size"], "100");
    let body = get(&file_url(&entries[0])).await.bytes().await.unwrap();
    assert!(body.starts_with(PNG_MAGIC));
    assert_eq!(entries[1]["file_url"], "");
}

#[tokio::test]
async fn api_faults_count_down_then_recover() {
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem::vpk(1, 10));
    sim.set_fault(Fault::RateLimited(2));
    sim.set_fault(Fault::Unavailable(1));
    let form = id_form("itemcount", &[1]);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(post(&sim, "GetPublishedFileDetails", &form).await.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    let counters = sim.counters();
    assert_eq!(counters.api_calls, 4);
    assert_eq!(counters.rejected_429, 2);
    assert_eq!(counters.rejected_503, 1);
    assert_eq!(counters.details_calls, 1);

    sim.set_fault(Fault::Unavailable(5));
    sim.clear_faults();
    assert_eq!(details(&sim, &[1]).await[0]["result"], 1);
}

#[tokio::test]
async fn download_faults() {
    let sim = WorkshopSim::start().await.unwrap();
    for id in 1..=3 {
        sim.add_item(SimItem::vpk(id, 200_000));
    }
    let urls: Vec<String> = details(&sim, &[1, 2, 3])
        .await
        .iter()
        .map(file_url)
        .collect();

    sim.set_fault(Fault::NotFound(1));
    sim.set_fault(Fault::Image(2));
    sim.set_fault(Fault::Truncated {
        id: 3,
        after: 70_000,
    });
    assert_eq!(get(&urls[0]).await.status(), StatusCode::NOT_FOUND);

    let image = get(&urls[1]).await;
    assert_eq!(image.status(), StatusCode::OK);
    assert!(image.bytes().await.unwrap().starts_with(PNG_MAGIC));

    let truncated = get(&urls[2]).await;
    assert_eq!(truncated.content_length(), Some(200_000));
    let mut stream = truncated.bytes_stream();
    let mut received = 0;
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => received += chunk.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "a short body is an error");
    assert_eq!(received, 70_000);
    assert_eq!(sim.counters().not_found, 1);

    sim.clear_faults();
    let whole = get(&urls[2]).await.bytes().await.unwrap();
    assert_eq!(whole.len(), 200_000);
}

#[tokio::test]
async fn slow_downloads_are_paced_and_can_be_abandoned() {
    let sim = WorkshopSim::start().await.unwrap();
    sim.add_item(SimItem::vpk(1, 100_000));
    sim.add_item(SimItem::vpk(2, 10_000_000));
    let urls: Vec<String> = details(&sim, &[1, 2]).await.iter().map(file_url).collect();
    sim.set_fault(Fault::Slow {
        id: 1,
        bytes_per_second: 400_000,
    });
    sim.set_fault(Fault::Slow {
        id: 2,
        bytes_per_second: 400_000,
    });

    let start = Instant::now();
    let body = get(&urls[0]).await.bytes().await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(body.len(), 100_000);
    assert!(
        elapsed >= Duration::from_millis(230) && elapsed < Duration::from_secs(2),
        "{elapsed:?} for 100 kB at 400 kB/s"
    );

    sim.reset_counters();
    let mut stream = get(&urls[1]).await.bytes_stream();
    let mut received = 0;
    while received < 100_000 {
        received += stream.next().await.unwrap().unwrap().len();
    }
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let served = sim.counters().bytes_served;
    assert!(served >= received as u64, "{served} < {received}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sim.counters().bytes_served, served, "stopped serving");
    assert!(served < 400_000);
}
