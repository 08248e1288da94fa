//! Workshop ids as users paste them: a number, or a Workshop page's URL.

use std::fmt;

/// A published file id (an item or a collection), non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkshopId(u64);

/// Why a pasted entry is not a Workshop id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not a Workshop item: {why}")]
pub struct BadId {
    pub entry: String,
    pub why: &'static str,
}

impl WorkshopId {
    pub fn new(id: u64) -> Option<Self> {
        (id != 0).then_some(Self(id))
    }

    /// Reads `123456789` or a Workshop URL such as
    /// `https://steamcommunity.com/sharedfiles/filedetails/?id=123456789`.
    pub fn parse(entry: &str) -> Result<Self, BadId> {
        let entry = entry.trim();
        let bad = |why| BadId {
            entry: entry.to_owned(),
            why,
        };
        if entry.bytes().all(|b| b.is_ascii_digit()) && !entry.is_empty() {
            return entry
                .parse()
                .ok()
                .and_then(Self::new)
                .ok_or_else(|| bad("the number is out of range"));
        }
        let url = url::Url::parse(entry).map_err(|_| {
            bad("expected a number or a Workshop link (…/sharedfiles/filedetails/?id=N)")
        })?;
        let host = url.host_str().unwrap_or_default();
        if !(host == "steamcommunity.com" || host.ends_with(".steamcommunity.com")) {
            return Err(bad("the link is not to steamcommunity.com"));
        }
        if !url.path().ends_with("/filedetails/") && !url.path().ends_with("/filedetails") {
            return Err(bad("the link is not to a Workshop item's page"));
        }
        let id = url
            .query_pairs()
            .find(|(key, _)| key == "id")
            .ok_or_else(|| bad("the link has no ?id="))?
            .1;
        Self::parse(&id).map_err(|_| bad("the link's id is not a number"))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// The item's page on the Steam Community.
    pub fn url(self) -> String {
        format!(
            "https://steamcommunity.com/sharedfiles/filedetails/?id={}",
            self.0
        )
    }
}

impl fmt::Display for WorkshopId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Reads a batch: ids or links separated by lines, commas or spaces.
/// Duplicates are dropped (first one kept); every bad entry is named.
pub fn parse_batch(text: &str) -> Result<Vec<WorkshopId>, Vec<BadId>> {
    let mut ids = Vec::new();
    let mut bad = Vec::new();
    for entry in text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|e| !e.is_empty())
    {
        match WorkshopId::parse(entry) {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(e) => bad.push(e),
        }
    }
    if !bad.is_empty() {
        return Err(bad);
    }
    if ids.is_empty() {
        return Err(vec![BadId {
            entry: String::new(),
            why: "enter at least one id or link",
        }]);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_links() {
        for entry in [
            "123456789",
            " 123456789 ",
            "https://steamcommunity.com/sharedfiles/filedetails/?id=123456789",
            "https://steamcommunity.com/workshop/filedetails/?id=123456789&searchtext=",
            "http://steamcommunity.com/sharedfiles/filedetails?l=german&id=123456789",
        ] {
            assert_eq!(
                WorkshopId::parse(entry).unwrap().get(),
                123_456_789,
                "{entry}"
            );
        }
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        for (entry, why) in [
            ("0", "out of range"),
            ("99999999999999999999999", "out of range"),
            ("12a", "expected a number"),
            ("https://example.com/?id=1", "not to steamcommunity.com"),
            (
                "https://steamcommunity.com/id/someone/",
                "not to a Workshop item",
            ),
            (
                "https://steamcommunity.com/sharedfiles/filedetails/",
                "no ?id=",
            ),
            (
                "https://steamcommunity.com/sharedfiles/filedetails/?id=abc",
                "not a number",
            ),
        ] {
            let error = WorkshopId::parse(entry).unwrap_err();
            assert!(error.to_string().contains(why), "{entry}: {error}");
        }
    }

    #[test]
    fn batches_split_on_lines_commas_and_spaces_and_drop_duplicates() {
        let ids =
            parse_batch("1, 2\n3 1\r\nhttps://steamcommunity.com/sharedfiles/filedetails/?id=2")
                .unwrap();
        assert_eq!(ids.iter().map(|i| i.get()).collect::<Vec<_>>(), [1, 2, 3]);
        let bad = parse_batch("1\nnope\n2\nhttps://example.com/").unwrap_err();
        assert_eq!(bad.len(), 2, "every bad entry is named: {bad:?}");
        assert!(parse_batch(" \n ").is_err());
    }
}
