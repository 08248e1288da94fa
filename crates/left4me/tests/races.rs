//! Races against the real panel, run concurrently many times: each side
//! gets a clear answer (success, or a refusal naming what is in the way),
//! never a 500, and what is stored afterwards keeps the sharing rules.

mod common;

use common::free_port;
use common::panel::*;
use reqwest::StatusCode;

const ROUNDS: usize = 20;
/// Rounds a race with a moving delay may take to see both of its orders.
const MOST_ROUNDS: usize = 200;

/// A head start for one side of a race (the second when positive, the
/// first when negative), moved after each round towards the point where
/// either side may win, so both orders happen however fast this machine
/// makes either side.
#[derive(Debug, Default)]
struct Straddle {
    delay_ms: i64,
    first_won: usize,
    second_won: usize,
}

impl Straddle {
    const STEP_MS: i64 = 2;

    /// Whether to race again: the usual rounds, then until both orders
    /// were seen (a test fails past [`MOST_ROUNDS`]).
    fn again(&self, round: usize) -> bool {
        assert!(
            round < MOST_ROUNDS,
            "after {round} rounds one order was never seen: {self:?}"
        );
        round < ROUNDS || self.first_won == 0 || self.second_won == 0
    }

    /// Runs both sides at once, the one behind after its delay.
    async fn run<A, B>(
        &self,
        first: impl std::future::Future<Output = A>,
        second: impl std::future::Future<Output = B>,
    ) -> (A, B) {
        let after = |ms: i64| {
            tokio::time::sleep(std::time::Duration::from_millis(ms.max(0).unsigned_abs()))
        };
        tokio::join!(
            async {
                after(-self.delay_ms).await;
                first.await
            },
            async {
                after(self.delay_ms).await;
                second.await
            }
        )
    }

    fn outcome(&mut self, first_won: bool) {
        if first_won {
            self.first_won += 1;
            self.delay_ms -= Self::STEP_MS;
        } else {
            self.second_won += 1;
            self.delay_ms += Self::STEP_MS;
        }
    }
}

/// Success, or the one refusal that says what is in the way.
fn clear(status: StatusCode, refusal: StatusCode, what: &str) {
    assert!(
        status == StatusCode::SEE_OTHER || status == refusal,
        "{what}: {status} is no clear answer (success or {refusal})"
    );
}

/// Whether the new-server form said the blueprint chosen cannot be used:
/// beside the field, or (no blueprint left to offer) above the form.
fn blueprint_refused(page: &str) -> bool {
    page.contains("choose one of the blueprints offered")
        || page.contains("the blueprint chosen is gone or no longer shared with you")
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
    let mut race = Straddle::default();
    let mut round = 0;
    while race.again(round) {
        round += 1;
        assert_eq!(share("true").await.status(), StatusCode::SEE_OTHER);
        let add = bob.post_with_csrf(&blueprint_path, &add_fields, &csrf_bob);
        let (add, unshare) = race.run(add, share("false")).await;
        // An overlay no longer shared is as missing to bob as a deleted one;
        // a share is not taken back from under a blueprint that uses it.
        clear(add.status(), StatusCode::NOT_FOUND, "adding the overlay");
        clear(
            unshare.status(),
            StatusCode::CONFLICT,
            "taking the share back",
        );
        let in_use = uses(&bob, blueprint, overlay).await;
        let (_, page) = alice.get_text(&format!("/overlays/{overlay}")).await;
        let shared = page.contains("value=\"false\"");
        assert!(
            !in_use || shared,
            "round {round}: bob's blueprint uses alice's private overlay"
        );
        race.outcome(in_use);
        if in_use {
            // Out of bob's blueprint again for the next round.
            let res = bob
                .post(
                    &format!("/blueprints/{blueprint}"),
                    &[("name", "bobs"), ("config", "")],
                )
                .await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
        }
    }
    eprintln!("{race:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_an_overlay_while_someone_adds_it_to_a_blueprint() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let blueprint = create_blueprint(&admin, "coop", "").await;
    let mut race = Straddle::default();
    let mut round = 0;
    while race.again(round) {
        round += 1;
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
        let delete_path = format!("/overlays/{overlay}/delete");
        let (add, delete) = race.run(add, admin.post(&delete_path, &[])).await;
        clear(add.status(), StatusCode::NOT_FOUND, "adding the overlay");
        clear(
            delete.status(),
            StatusCode::CONFLICT,
            "deleting the overlay",
        );
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
        race.outcome(in_use);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn taking_a_blueprints_share_back_while_someone_makes_a_server_on_it() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let alice = add_user(&app, &admin, "alice", "alice-password-1").await;
    let bob = add_user(&app, &admin, "bob", "bob-password-1").await;
    let blueprint = create_blueprint(&alice, "alices", "").await;
    let csrf_alice = alice.csrf("/account").await;
    let share_path = format!("/blueprints/{blueprint}/share");
    let share = async |shared: &'static str| {
        alice
            .post_with_csrf(&share_path, &[("shared", shared)], &csrf_alice)
            .await
    };
    let mut race = Straddle::default();
    let mut round = 0;
    while race.again(round) {
        round += 1;
        assert_eq!(share("true").await.status(), StatusCode::SEE_OTHER);
        let name = format!("bob-{round}");
        let (create, unshare) = race
            .run(post_server(&bob, &name, blueprint, ""), share("false"))
            .await;
        let (status, page) = (create.status(), create.text().await.unwrap());
        let (unshared, refusal) = (unshare.status(), unshare.text().await.unwrap());
        race.outcome(status == StatusCode::SEE_OTHER);
        if status == StatusCode::SEE_OTHER {
            // Made while the blueprint was shared: then the share cannot
            // be taken back from under bob's server, and says why.
            assert_eq!(unshared, StatusCode::CONFLICT, "round {round}: {refusal}");
            assert!(refusal.contains(&name), "round {round}: {refusal}");
            let server = left4me_web::open_store(&app.config)
                .await
                .unwrap()
                .servers(None)
                .await
                .unwrap()
                .into_iter()
                .find(|s| s.name == name)
                .unwrap()
                .id;
            act_ok(&bob, server, "delete").await;
        } else {
            assert_eq!(unshared, StatusCode::SEE_OTHER, "round {round}: {refusal}");
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "round {round}: {page}"
            );
            assert!(blueprint_refused(&page), "round {round}: {page}");
        }
    }
    eprintln!("{race:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_blueprint_while_a_server_is_made_on_it() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let mut race = Straddle::default();
    let mut round = 0;
    while race.again(round) {
        round += 1;
        let blueprint = create_blueprint(&admin, &format!("coop {round}"), "").await;
        let name = format!("made-{round}");
        let delete_path = format!("/blueprints/{blueprint}/delete");
        let (create, delete) = race
            .run(
                post_server(&admin, &name, blueprint, ""),
                admin.post(&delete_path, &[]),
            )
            .await;
        let (created, deleted) = (create.status(), delete.status());
        let (create_page, delete_page) =
            (create.text().await.unwrap(), delete.text().await.unwrap());
        match (created, deleted) {
            (StatusCode::SEE_OTHER, StatusCode::CONFLICT) => {
                race.outcome(true);
                assert!(
                    delete_page.contains(&name),
                    "round {round}: the refusal names the server: {delete_page}"
                );
            }
            (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::SEE_OTHER) => {
                race.outcome(false);
                assert!(
                    blueprint_refused(&create_page),
                    "round {round}: {create_page}"
                );
            }
            other => panic!("round {round}: {other:?} is no clear pair of answers"),
        }
    }
    eprintln!("{race:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_change_servers_at_once() {
    let mut app = App::spawn().await;
    let one = app.login(ADMIN.0, ADMIN.1).await;
    let two = app.login(ADMIN.0, ADMIN.1).await;
    let blueprint = create_blueprint(&one, "coop", "").await;
    let first = create_server(&one, "first", blueprint, free_port()).await;
    let second = create_server(&one, "second", blueprint, free_port()).await;
    let settings_of = async |server: i64| {
        let store = left4me_web::open_store(&app.config).await.unwrap();
        let s = store.server(server).await.unwrap();
        store.close().await;
        (s.name, s.hostname)
    };
    for round in 0..ROUNDS {
        // One server, two sets of settings: both saved whole, one after
        // the other; what is stored is one of them, never a mix.
        let (a, b) = (format!("one-{round}"), format!("two-{round}"));
        let (ha, hb) = (format!("host of {a}"), format!("host of {b}"));
        let (ra, rb) = tokio::join!(
            post_settings(&one, first, &a, &ha, blueprint),
            post_settings(&two, first, &b, &hb, blueprint)
        );
        assert_eq!(ra.status(), StatusCode::SEE_OTHER, "round {round}");
        assert_eq!(rb.status(), StatusCode::SEE_OTHER, "round {round}");
        let stored = settings_of(first).await;
        assert!(
            stored == (a.clone(), ha) || stored == (b.clone(), hb),
            "round {round}: {stored:?}"
        );

        // Two servers, one name: one gets it, the other a refusal naming it.
        let same = format!("same-{round}");
        let (ra, rb) = tokio::join!(
            post_settings(&one, first, &same, "a host", blueprint),
            post_settings(&two, second, &same, "another host", blueprint)
        );
        let mut statuses = [ra.status(), rb.status()];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::SEE_OTHER, StatusCode::CONFLICT],
            "round {round}"
        );
        let refusal = if ra.status() == StatusCode::CONFLICT {
            ra
        } else {
            rb
        };
        let page = refusal.text().await.unwrap();
        assert!(
            page.contains(&same) && page.contains("already exists"),
            "round {round}: {page}"
        );
        let names = [settings_of(first).await.0, settings_of(second).await.0];
        assert_eq!(
            names.iter().filter(|n| **n == same).count(),
            1,
            "round {round}: {names:?}"
        );
        // Apart again for the next round.
        for (client, server, name) in [(&one, first, "first"), (&two, second, "second")] {
            let res = post_settings(client, server, name, "host", blueprint).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
        }
    }
    app.stop().await;
}
