//! Races against the real panel, run concurrently many times: each side
//! gets a clear answer (success, or a refusal naming what is in the way),
//! never a 500, and what is stored afterwards keeps the sharing rules.

mod common;

use common::panel::*;
use reqwest::StatusCode;

const ROUNDS: usize = 20;

fn clear(status: StatusCode, what: &str) {
    assert!(
        status == StatusCode::SEE_OTHER
            || status == StatusCode::CONFLICT
            || status == StatusCode::NOT_FOUND
            || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {status} is no clear answer"
    );
}

/// Whether bob's blueprint page lists the overlay.
async fn uses(bob: &Client, blueprint: i64, overlay: i64) -> bool {
    let (_, page) = bob.get_text(&format!("/blueprints/{blueprint}")).await;
    page.contains(&format!("name=\"overlay\" value=\"{overlay}\""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn taking_a_share_back_while_someone_starts_using_it() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let alice = add_user(&app, &admin, "alice", "alice-password-1").await;
    let bob = add_user(&app, &admin, "bob", "bob-password-1").await;
    let res = alice.post("/overlays", &[("name", "maps")]).await;
    let overlay = Client::redirect_id(&res);
    let blueprint = create_blueprint(&bob, "bobs", "").await;
    let (csrf_alice, csrf_bob) = (alice.csrf("/account").await, bob.csrf("/account").await);
    let share_path = format!("/overlays/{overlay}/share");
    let share = async |shared: &'static str| {
        alice
            .post_with_csrf(&share_path, &[("shared", shared)], &csrf_alice)
            .await
    };
    // Without a race, bob may use the shared overlay.
    assert_eq!(share("true").await.status(), StatusCode::SEE_OTHER);
    let overlay_field = overlay.to_string();
    let add_fields = [
        ("name", "bobs"),
        ("config", ""),
        ("add_overlay", overlay_field.as_str()),
    ];
    let blueprint_path = format!("/blueprints/{blueprint}");
    let res = bob
        .post_with_csrf(&blueprint_path, &add_fields, &csrf_bob)
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(uses(&bob, blueprint, overlay).await);
    let res = bob
        .post_with_csrf(
            &blueprint_path,
            &[("name", "bobs"), ("config", "")],
            &csrf_bob,
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (mut used, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        assert_eq!(share("true").await.status(), StatusCode::SEE_OTHER);
        let add = bob.post_with_csrf(&blueprint_path, &add_fields, &csrf_bob);
        let unshare = share("false");
        let (add, unshare) = tokio::join!(add, unshare);
        clear(add.status(), "adding the overlay");
        clear(unshare.status(), "taking the share back");
        let in_use = uses(&bob, blueprint, overlay).await;
        let (_, page) = alice.get_text(&format!("/overlays/{overlay}")).await;
        let shared = page.contains("value=\"false\"");
        assert!(
            !in_use || shared,
            "round {round}: bob's blueprint uses alice's private overlay"
        );
        if in_use {
            used += 1;
            // Out of bob's blueprint again for the next round.
            let res = bob
                .post(
                    &format!("/blueprints/{blueprint}"),
                    &[("name", "bobs"), ("config", "")],
                )
                .await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
        } else {
            refused += 1;
        }
    }
    eprintln!("{used} rounds the use won, {refused} the share's taking back");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_an_overlay_while_someone_adds_it_to_a_blueprint() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let blueprint = create_blueprint(&admin, "coop", "").await;
    for round in 0..ROUNDS {
        let res = admin
            .post("/overlays", &[("name", &format!("maps {round}"))])
            .await;
        let overlay = Client::redirect_id(&res);
        let overlay_field = overlay.to_string();
        let add = async {
            admin
                .post(
                    &format!("/blueprints/{blueprint}"),
                    &[
                        ("name", "coop"),
                        ("config", ""),
                        ("add_overlay", &overlay_field),
                    ],
                )
                .await
        };
        let delete = async {
            admin
                .post(&format!("/overlays/{overlay}/delete"), &[])
                .await
        };
        let (add, delete) = tokio::join!(add, delete);
        clear(add.status(), "adding the overlay");
        clear(delete.status(), "deleting the overlay");
        let in_use = uses(&admin, blueprint, overlay).await;
        let (status, _) = admin.get_text(&format!("/overlays/{overlay}")).await;
        let exists = status == StatusCode::OK;
        assert!(
            !in_use || exists,
            "round {round}: the blueprint names a deleted overlay"
        );
        assert_eq!(
            delete.status() == StatusCode::SEE_OTHER,
            !exists,
            "round {round}: the delete's answer says what happened"
        );
        if in_use {
            let res = admin
                .post(
                    &format!("/blueprints/{blueprint}"),
                    &[("name", "coop"), ("config", "")],
                )
                .await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
        }
    }
    app.stop().await;
}
