//! What the panel's forms and the API take as text: the form bodies
//! (`application/x-www-form-urlencoded`) of the operations' inputs, and the
//! values validated at the boundary (names, passwords, ports, schedule
//! times and steps, Workshop ids).
#![no_main]

use left4me_app::domain;
use left4me_app::ops;

fn form<T: serde::de::DeserializeOwned>(body: &[u8]) {
    let _ = serde_urlencoded::from_bytes::<T>(body);
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(body);
    match which % 16 {
        0 => form::<ops::servers::NewServerInput>(body),
        1 => form::<ops::servers::ServerSettingsInput>(body),
        2 => form::<ops::servers::MemberInput>(body),
        3 => form::<ops::users::NewUserInput>(body),
        4 => form::<ops::tokens::NewTokenInput>(body),
        5 => form::<ops::overlays::EditInput>(body),
        6 => form::<ops::blueprints::BlueprintInput>(body),
        7 => form::<ops::workshop::AddItemsInput>(body),
        8 => {
            let _ = domain::Username::parse(&text);
            let _ = domain::NewPassword::parse(&text);
        }
        9 => {
            let _ = domain::DisplayName::parse(&text);
            let _ = domain::Hostname::parse(&text);
        }
        10 => {
            let _ = domain::parse_optional_port(&text);
        }
        11 => {
            let _ = left4me_app::timing::Timing::parse(&text);
        }
        12 => {
            let _ = left4me_app::schedule_plan::Step::parse_lines(&text);
        }
        13 => {
            let _ = left4me_workshop::id::parse_batch(&text);
        }
        14 => form::<ops::scripts::ScriptInput>(body),
        _ => form::<ops::overlays::MoveInput>(body),
    }
});
