//! Second factors below the operations: TOTP keys (RFC 6238: SHA-1, six
//! digits, 30-second steps, one step of clock drift either way), the QR
//! code an authenticator app scans (SVG drawn here, so no outside service
//! and no script), and recovery codes.

use totp_rs::{Algorithm, TOTP};

/// Seconds per TOTP step.
pub const STEP_SECS: u64 = 30;
const DIGITS: usize = 6;
/// Steps of drift accepted either way.
const DRIFT: u64 = 1;
const KEY_BYTES: usize = 20;
/// Recovery codes made at a time.
pub const RECOVERY_CODES: usize = 10;
/// Letters and digits that cannot be mistaken for one another (no l, o,
/// 0, 1): 32 of them, five bits each.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A TOTP key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct TotpKey(Vec<u8>);

impl std::fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpKey(..)")
    }
}

impl TotpKey {
    pub fn generate() -> Self {
        let mut key = vec![0u8; KEY_BYTES];
        getrandom::fill(&mut key).expect("the OS random source works");
        Self(key)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, account: &str) -> TOTP {
        TOTP::new(
            Algorithm::SHA1,
            DIGITS,
            0,
            STEP_SECS,
            self.0.clone(),
            Some("left4me".into()),
            account.to_owned(),
        )
        .expect("a 160-bit key and a name without ':' make a valid TOTP")
    }

    /// The key as authenticator apps take it typed in.
    pub fn base32(&self) -> String {
        self.totp("x").get_secret_base32()
    }

    /// The `otpauth://` link the QR code holds.
    pub fn uri(&self, account: &str) -> String {
        self.totp(account).get_url()
    }

    /// The code for the step `at` (Unix seconds) falls in.
    pub fn code_at(&self, at: u64) -> String {
        self.totp("x").generate(at)
    }

    /// The step `code` belongs to at `now`, one step of drift either way;
    /// `None` when it is no code of this key then.
    pub fn matching_step(&self, code: &str, now: u64) -> Option<u64> {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let step = now / STEP_SECS;
        let totp = self.totp("x");
        (step.saturating_sub(DRIFT)..=step + DRIFT)
            .find(|s| crate::credentials::constant_time_eq(&totp.generate(s * STEP_SECS), code))
    }
}

/// `text` as a QR code in SVG, black on white, to put inside a page (no
/// XML declaration).
pub fn qr_svg(text: &str) -> String {
    let svg = qrcode::QrCode::new(text.as_bytes())
        .expect("an otpauth link fits in a QR code")
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    }
}

/// New recovery codes: `xxxx-xxxx-xxxx`, 60 random bits each.
pub fn recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 12];
            getrandom::fill(&mut bytes).expect("the OS random source works");
            let chars: Vec<char> = bytes
                .iter()
                .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// A recovery code as typed (any case, spaces or dashes) in the form
/// its hash is kept of; `None` when it cannot be one.
pub fn normalize_recovery_code(typed: &str) -> Option<String> {
    let plain: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (plain.len() == 12 && plain.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_test_vectors() {
        // Appendix B, SHA-1, the last six digits of the eight given.
        let key = TotpKey::from_bytes(b"12345678901234567890".to_vec());
        for (at, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(key.code_at(at), code, "at {at}");
        }
    }

    #[test]
    fn a_code_matches_its_step_with_one_step_of_drift() {
        let key = TotpKey::generate();
        let now = 1_800_000_000;
        let step = now / STEP_SECS;
        assert_eq!(key.matching_step(&key.code_at(now), now), Some(step));
        assert_eq!(
            key.matching_step(&key.code_at(now - STEP_SECS), now),
            Some(step - 1)
        );
        assert_eq!(
            key.matching_step(&key.code_at(now + STEP_SECS), now),
            Some(step + 1)
        );
        assert_eq!(
            key.matching_step(&key.code_at(now - 2 * STEP_SECS), now),
            None
        );
        assert_eq!(key.matching_step("12345", now), None);
        assert_eq!(key.matching_step("abcdef", now), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_read_back_however_typed() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.len(), 14);
        let typed = format!(" {} ", code.to_uppercase().replace('-', " "));
        assert_eq!(normalize_recovery_code(&typed), Some(code.replace('-', "")));
        assert_eq!(normalize_recovery_code("0000-0000-0000"), None);
    }

    #[test]
    fn the_qr_code_is_plain_svg() {
        let key = TotpKey::generate();
        let svg = qr_svg(&key.uri("alice"));
        assert!(svg.starts_with("<svg") && !svg.contains("<script"), "{svg}");
        assert!(
            key.uri("alice")
                .starts_with("otpauth://totp/left4me:alice?")
        );
        assert!(format!("{key:?}") == "TotpKey(..)");
    }
}
