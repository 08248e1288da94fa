//! Two-factor sign-in against the real panel: an authenticator app set up
//! from the key the account page shows (codes computed here with totp-rs,
//! as a phone would), sign-ins that then take a code, codes that work
//! once, one step of clock drift, recovery codes that work once, wrong
//! codes slowed and logged, turning it off with the password, and the key
//! kept sealed outside the database.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use common::panel::*;
use reqwest::StatusCode;
use totp_rs::{Algorithm, Secret, TOTP};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What the phone shows at `at` for the key typed in as `base32`.
fn code(base32: &str, at: u64) -> String {
    let key = Secret::Encoded(base32.to_owned()).to_bytes().unwrap();
    TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, key, None, String::new()).generate(at)
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in:\n{text}"))
        + start.len();
    &text[from..from + text[from..].find(end).unwrap()]
}

/// Signs in with the password; returns where it leads.
async fn password_step(client: &Client, user: &str, password: &str) -> String {
    let res = client.login(user, password).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// The second step with `typed`: the status and the page.
async fn code_step(client: &Client, typed: &str) -> (StatusCode, String) {
    let csrf = client.csrf("/login/second-factor").await;
    let res = client
        .post_with_csrf("/login/second-factor", &[("code", typed)], &csrf)
        .await;
    (res.status(), res.text().await.unwrap())
}

async fn signed_in(client: &Client) -> bool {
    client.get("/account").await.status() == StatusCode::OK
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authenticator_app_guards_the_sign_in_and_recovery_codes_stand_in_once() {
    // Requests name their client in X-Forwarded-For, as behind a proxy.
    let mut app = App::spawn_configured(|c| c.trusted_proxies = "127.0.0.1".parse().unwrap()).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let alice = add_user(&app, &admin, "alice", "alice-password-1").await;
    let elsewhere = app.login("alice", "alice-password-1").await;

    // Set up: the key as text and a QR code drawn by the panel.
    let res = alice.post("/account/totp", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let page = res.text().await.unwrap();
    let qr = between(&page, "<figure class=\"qr\">", "</figure>");
    assert!(qr.starts_with("<svg") && !qr.contains("<script"), "{qr}");
    let key = between(&page, "<code id=\"totp-secret\">", "<").to_owned();
    // A wrong code, or one two steps old, does not turn it on.
    for wrong in ["000000".to_owned(), code(&key, now() - 60)] {
        let res = alice
            .post("/account/totp/confirm", &[("code", &wrong)])
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = res.text().await.unwrap();
        assert!(page.contains(&key), "the same key is shown again");
    }
    let first = code(&key, now());
    let res = alice
        .post("/account/totp/confirm", &[("code", &first)])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let page = res.text().await.unwrap();
    let codes: Vec<String> = between(&page, "<ol id=\"recovery-codes\">", "</ol>")
        .split("<code>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{page}");
    assert!(
        !signed_in(&elsewhere).await,
        "a new second factor ends the other sessions"
    );
    assert!(signed_in(&alice).await, "but not this one");

    // The key is sealed: the database holds neither its text nor its bytes.
    let database = std::fs::read(app.config.database_path()).unwrap();
    let wal =
        std::fs::read(app.config.database_path().with_extension("db-wal")).unwrap_or_default();
    let raw = Secret::Encoded(key.clone()).to_bytes().unwrap();
    for bytes in [&database, &wal] {
        assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()));
        assert!(!bytes.windows(raw.len()).any(|w| w == raw.as_slice()));
    }
    let sealing = std::fs::metadata(app.config.root.join("secrets.key")).unwrap();
    assert_eq!(sealing.permissions().mode() & 0o777, 0o600);

    // Signing in now takes a code; the password alone opens nothing.
    let phone = app.client();
    assert_eq!(
        password_step(&phone, "alice", "alice-password-1").await,
        "/login/second-factor"
    );
    assert!(!signed_in(&phone).await);
    let (status, page) = code_step(&phone, "123456").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("not right"), "{page}");
    // The code that turned it on was taken: the phone's next one (a
    // phone a little ahead: one step of drift) signs in, once.
    // (The very code: a new 30 s step may have begun since.)
    let (status, page) = code_step(&phone, &first).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "taken already: {page}"
    );
    let ahead = code(&key, now() + 30);
    let (status, _) = code_step(&phone, &ahead).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(signed_in(&phone).await);
    let again = app.client();
    password_step(&again, "alice", "alice-password-1").await;
    let (status, page) = code_step(&again, &ahead).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a code works once: {page}"
    );

    // A recovery code stands in once, however it is typed.
    let lost_phone = app.client();
    password_step(&lost_phone, "alice", "alice-password-1").await;
    let typed = codes[0].to_uppercase().replace('-', " ");
    let (status, _) = code_step(&lost_phone, &typed).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let twice = app.client();
    password_step(&twice, "alice", "alice-password-1").await;
    let (status, _) = code_step(&twice, &codes[0]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, account) = alice.get_text("/account").await;
    assert_eq!(between(&account, "<strong id=\"recovery-left\">", "<"), "9");

    // Wrong codes are slowed down like wrong passwords, and logged; the
    // guesser's address is slowed, not the owner's.
    let guesser = Client::forwarded_for(&app.url(""), "203.0.113.9");
    password_step(&guesser, "alice", "alice-password-1").await;
    let mut slowed = false;
    for _ in 0..20 {
        let (status, _) = code_step(&guesser, "000000").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            slowed = true;
            break;
        }
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert!(slowed, "twenty wrong codes in a row are slowed down");
    let (_, activity) = admin.get_text("/activity").await;
    assert!(
        activity.contains("a wrong second factor for alice"),
        "{activity}"
    );

    // Turning it off asks for the password.
    let res = alice
        .post("/account/totp/remove", &[("password", "not-it")])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("id=\"totp-error\">that is not your password<"),
        "the mistake is said at the form that made it"
    );
    let res = alice
        .post("/account/totp/remove", &[("password", "alice-password-1")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let plain = app.client();
    assert_eq!(
        password_step(&plain, "alice", "alice-password-1").await,
        "/"
    );
    app.stop().await;
}

/// Turns an authenticator app on for `client`'s user; returns its key.
async fn turn_on_totp(client: &Client) -> String {
    let page = client
        .post("/account/totp", &[])
        .await
        .text()
        .await
        .unwrap();
    let key = between(&page, "<code id=\"totp-secret\">", "<").to_owned();
    let res = client
        .post("/account/totp/confirm", &[("code", &code(&key, now()))])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    key
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_and_ended_and_an_admin_resets_a_lost_second_factor() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    add_user(&app, &admin, "alice", "alice-password-1").await;
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    let laptop = Client::with_user_agent(&app.url(""), firefox);
    let desktop = Client::with_user_agent(&app.url(""), chrome);
    for client in [&laptop, &desktop] {
        password_step(client, "alice", "alice-password-1").await;
    }

    // The account page lists both, this one marked, the other one ended.
    let (_, page) = laptop.get_text("/account").await;
    let list = between(&page, "<table id=\"session-list\">", "</table>");
    assert!(
        list.contains("Firefox on Linux") && list.contains("this one"),
        "{list}"
    );
    assert!(list.contains("Chrome on Windows"), "{list}");
    assert!(list.contains("127.0.0.1"), "{list}");
    let end = between(list, "action=\"/account/sessions/", "/end\"").to_owned();
    let res = laptop
        .post(&format!("/account/sessions/{end}/end"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        !signed_in(&desktop).await,
        "the ended session is signed out"
    );
    assert!(signed_in(&laptop).await);
    let (_, page) = laptop.get_text("/account").await;
    assert!(!page.contains("Chrome on Windows"));

    // An admin ends all of a user's sessions.
    let users = admin.get_text("/users").await.1;
    // The admin's own row has no such buttons: the one there is alice's.
    let before = &users[..users
        .find("/sessions/end\"")
        .expect("a button to end sessions")];
    let alice_id = &before[before.rfind('/').unwrap() + 1..];
    let res = admin
        .post(&format!("/users/{alice_id}/sessions/end"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!signed_in(&laptop).await);

    // A lost phone: the admin turns alice's second factor off; she signs
    // in with her password alone and is told until she sets one up again.
    let phone = app.client();
    password_step(&phone, "alice", "alice-password-1").await;
    turn_on_totp(&phone).await;
    let res = admin
        .post(&format!("/users/{alice_id}/second-factor/reset"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!signed_in(&phone).await, "her sessions ended with it");
    let back = app.client();
    assert_eq!(password_step(&back, "alice", "alice-password-1").await, "/");
    let (_, dashboard) = back.get_text("/").await;
    assert!(
        dashboard.contains("An admin turned off your two-factor sign-in"),
        "{dashboard}"
    );
    let (_, activity) = admin.get_text("/activity").await;
    assert!(
        activity.contains("reset the second factor of alice"),
        "{activity}"
    );
    turn_on_totp(&back).await;
    let (_, dashboard) = back.get_text("/").await;
    assert!(!dashboard.contains("An admin turned off your two-factor sign-in"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_policy_leads_who_it_covers_to_set_up_a_second_factor_first() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bob = add_user(&app, &admin, "bob", "bob-password-1").await;
    let token = common::api::make_token(&admin, "bot", &["read"], &[]).await;
    let bot = common::api::Bot::new(&app, &token);
    assert_eq!(bot.get("/servers").await.0, StatusCode::OK);

    let res = admin
        .post("/users/second-factor-policy", &[("policy", "admins")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // The admin can reach nothing but the setup, by page or API.
    for page in ["/", "/users", "/overlays"] {
        let res = admin.get(page).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(res.headers()["location"], "/account#second-factor");
    }
    let (status, account) = admin.get_text("/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        account.contains("id=\"second-factor-required\""),
        "{account}"
    );
    let res = admin.get("/api/v1/servers").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (status, problem) = bot.get("/servers").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    let res = admin
        .post("/account/tokens", &[("name", "x"), ("scopes", "read")])
        .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "no tokens before the setup"
    );
    // A passkey is a way to set one up too.
    let csrf = admin.csrf("/account").await;
    let (status, challenge) = fetch_json(&admin, "/account/passkeys/options", &csrf).await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    // Bob is no admin: untouched.
    assert_eq!(bob.get("/").await.status(), StatusCode::OK);

    turn_on_totp(&admin).await;
    assert_eq!(admin.get("/").await.status(), StatusCode::OK);
    assert_eq!(bot.get("/servers").await.0, StatusCode::OK);

    // Everyone: now bob too.
    let res = admin
        .post("/users/second-factor-policy", &[("policy", "everyone")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(bob.get("/").await.status(), StatusCode::SEE_OTHER);
    turn_on_totp(&bob).await;
    assert_eq!(bob.get("/").await.status(), StatusCode::OK);
    let (_, activity) = admin.get_text("/activity").await;
    assert!(
        activity.contains("a second factor is now required of everyone"),
        "{activity}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_and_a_new_second_factor_ask_for_the_password_after_ten_minutes() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let alice = add_user(&app, &admin, "alice", "alice-password-1").await;
    let (_, account) = alice.get_text("/account").await;
    assert!(!account.contains("id=\"confirm\""), "just signed in");

    // The sign-in grows old: moved back in the database, as eleven
    // minutes would.
    {
        use sqlx::{ConnectOptions, Connection};
        let mut db = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(app.config.database_path())
            .connect()
            .await
            .unwrap();
        sqlx::query("UPDATE sessions SET verified_at = verified_at - 660")
            .execute(&mut db)
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    // A change from outside the panel shows within its memo's time.
    let asked = async {
        while !alice
            .get_text("/account")
            .await
            .1
            .contains("id=\"confirm\"")
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), asked)
        .await
        .expect("the account page asks for the password again");
    let res = alice.post("/account/totp", &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("confirm your password"));
    // A token made through the API from this browser session.
    let csrf = alice.csrf("/account").await;
    let make_token = async || {
        alice
            .http
            .post(app.url("/api/v1/account/tokens"))
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({"name": "bot", "scopes": ["read"]}))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(make_token().await, StatusCode::FORBIDDEN);

    let res = alice
        .post("/account/confirm", &[("password", "not-it")])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = alice
        .post("/account/confirm", &[("password", "alice-password-1")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    turn_on_totp(&alice).await;
    assert_eq!(make_token().await, StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_sign_in_ends_after_ten_wrong_codes_from_any_addresses() {
    let mut app = App::spawn_configured(|c| c.trusted_proxies = "127.0.0.1".parse().unwrap()).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let alice = add_user(&app, &admin, "alice", "alice-password-1").await;
    turn_on_totp(&alice).await;

    // The attacker has the password and one pending sign-in, and sends
    // each code from another address (so no address is slowed).
    let first = Client::forwarded_for(&app.url(""), "203.0.113.100");
    password_step(&first, "alice", "alice-password-1").await;
    let csrf = first.csrf("/login/second-factor").await;
    let cookies = first
        .http
        .get(app.url("/login/second-factor"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        cookies.status(),
        StatusCode::OK,
        "the pending cookie is kept"
    );
    let mut statuses = Vec::new();
    for i in 0..11 {
        let from = format!("203.0.113.{i}");
        let res = first
            .http
            .post(app.url("/login/second-factor"))
            .header("x-forwarded-for", &from)
            .form(&[("csrf", csrf.as_str()), ("code", "000000")])
            .send()
            .await
            .unwrap();
        statuses.push(res.status());
    }
    assert_eq!(
        statuses[..9],
        [StatusCode::UNPROCESSABLE_ENTITY; 9],
        "{statuses:?}"
    );
    assert_eq!(statuses[9], StatusCode::UNAUTHORIZED, "the tenth ends it");
    assert_eq!(statuses[10], StatusCode::UNAUTHORIZED, "and it stays ended");
    app.stop().await;
}

/// Posts to a page's script endpoint as the page's script does: the CSRF
/// token in its header, JSON back.
async fn fetch_json(client: &Client, path: &str, csrf: &str) -> (StatusCode, serde_json::Value) {
    let res = client
        .http
        .post(format!("{}{path}", client.base))
        .header("x-csrf-token", csrf)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn passkey_challenges_are_bound_to_the_panel_and_answers_that_are_not_a_passkey_are_refused()
{
    let app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;

    // What the browser is asked for: a passkey for this panel's name,
    // discoverable where the authenticator can, that checks its user.
    let csrf = admin.csrf("/account").await;
    let (status, challenge) = fetch_json(&admin, "/account/passkeys/options", &csrf).await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    let options = &challenge["options"]["publicKey"];
    assert_eq!(options["rp"]["id"], "localhost", "{options}");
    assert_eq!(
        options["authenticatorSelection"]["residentKey"],
        "preferred"
    );
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(options["user"]["name"], ADMIN.0);

    // An answer that is not an authenticator's, or to no challenge.
    let res = admin
        .post(
            "/account/passkeys",
            &[
                ("ceremony", challenge["ceremony"].as_str().unwrap()),
                ("name", "fake"),
                ("credential", "{\"id\": \"x\"}"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = res.text().await.unwrap();
    assert!(
        between(&page, "id=\"passkey-error\">", "<").contains("is not a passkey"),
        "{page}"
    );
    let (_, account) = admin.get_text("/account").await;
    assert!(
        !account.contains("id=\"passkey-list\""),
        "nothing was added"
    );

    // A passkey alone needs a passkey first.
    let res = admin
        .post("/account/passkeys/sign-in", &[("on", "true")])
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);

    // Signing in with something that is not a passkey's answer says so
    // and opens nothing.
    let stranger = app.client();
    let csrf = stranger.csrf("/login").await;
    let (status, challenge) = fetch_json(&stranger, "/login/passkey/options", &csrf).await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    assert!(
        challenge["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "the authenticator offers whichever of its passkeys is for this panel"
    );
    let res = stranger
        .post_with_csrf(
            "/login/passkey",
            &[
                ("ceremony", challenge["ceremony"].as_str().unwrap()),
                ("credential", "not json"),
            ],
            &csrf,
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(!signed_in(&stranger).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn passkeys_are_off_with_the_reason_where_the_panel_has_no_name_browsers_accept() {
    let app = App::spawn_configured(|c| {
        c.public_url = Some("http://l4d2.example.org".parse().unwrap());
    })
    .await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let (_, account) = admin.get_text("/account").await;
    assert!(
        between(&account, "<p id=\"passkeys-off\">", "</p>").contains("is not https://"),
        "{account}"
    );
    let csrf = admin.csrf("/account").await;
    let (status, body) = fetch_json(&admin, "/account/passkeys/options", &csrf).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body.to_string().contains("Passkeys are off on this panel"),
        "{body}"
    );
    let (_, login) = app.client().get_text("/login").await;
    assert!(!login.contains("Sign in with a passkey"), "{login}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panel_whose_sealing_key_was_replaced_says_so_at_start() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    turn_on_totp(&admin).await;
    app.stop().await;
    // A restore without the old host's key: a new one in its place.
    let key = app.root.path().join("secrets.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let panel = PanelProcess::start(&app.root, common::free_port());
    let log = panel.log.clone();
    common::wait_until(
        "the panel says which keys do not open",
        std::time::Duration::from_secs(20),
        || {
            std::fs::read_to_string(&log).is_ok_and(|l| {
                l.contains(
                    "the authenticator keys of 1 user(s) do not open with this panel's sealing key",
                )
            })
        },
    );
    // Started (its signal handler in place) before it is stopped.
    let client = Client::new(&format!("http://{}", panel.addr));
    assert_eq!(client.get("/health").await.status(), StatusCode::OK);
    panel.terminate();
}
