//! The Workshop CDN: item files, streamed, and preview images.

use std::io;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State as Extract};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{Content, Entry, Fault, Shared, VPK_MAGIC, lock};

/// A 1×1 transparent PNG, every preview image and the `Image` fault's body.
pub(crate) const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// Bytes per chunk of a download at full speed.
const CHUNK: u64 = 64 * 1024;

/// How long a truncated download waits before dropping the connection,
/// so the server has flushed the bytes before the cut.
const FLUSH_GRACE: Duration = Duration::from_millis(50);

pub(crate) fn router() -> Router<Shared> {
    Router::new().route("/ugc/{id}/{handle}/{name}", get(download))
}

/// Where an item's file is served; the content handle makes every
/// version's URL different, as on Steam.
pub(crate) fn file_url(base: &str, id: u64, hcontent_file: u64, filename: &str) -> String {
    let name = filename.rsplit('/').next().unwrap_or_default();
    let name = if name.is_empty() { "file" } else { name };
    let name: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{base}/ugc/{id}/{hcontent_file}/{name}")
}

pub(crate) fn preview_url(base: &str, id: u64, hcontent_preview: u64) -> String {
    format!("{base}/ugc/{id}/{hcontent_preview}/preview.png")
}

/// Fills `buf` with the bytes of a [`Content::Vpk`] from `offset` on:
/// each 8-byte block is a hash of the seed and its index, so any range is
/// produced without the bytes before it.
pub(crate) fn fill_vpk(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut rest = &mut buf[..];
    while !rest.is_empty() {
        let block = splitmix64(seed ^ (pos / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(rest.len());
        let (head, tail) = rest.split_at_mut(n);
        head.copy_from_slice(&block[start..start + n]);
        rest = tail;
        pos += n as u64;
    }
    for (pos, magic) in (0u64..).zip(VPK_MAGIC) {
        if let Some(byte) = pos
            .checked_sub(offset)
            .and_then(|i| buf.get_mut(usize::try_from(i).ok()?))
        {
            *byte = magic;
        }
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

enum Source {
    Vpk { seed: u64 },
    Memory(Bytes),
}

impl Source {
    fn chunk(&self, offset: u64, len: u64) -> Bytes {
        match self {
            Source::Vpk { seed } => {
                let mut buf = vec![0; len as usize];
                fill_vpk(*seed, offset, &mut buf);
                Bytes::from(buf)
            }
            Source::Memory(bytes) => bytes.slice(offset as usize..(offset + len) as usize),
        }
    }
}

/// One `file_url` download in progress.
struct Transfer {
    shared: Shared,
    source: Source,
    size: u64,
    offset: u64,
    /// Where a `Truncated` fault cuts the connection, or `size`.
    stop: u64,
    /// The start and rate of a `Slow` fault.
    pace: Option<(Instant, u64)>,
    aborted: bool,
}

impl Transfer {
    async fn next(mut self) -> Option<(io::Result<Bytes>, Transfer)> {
        if self.offset >= self.stop {
            if self.stop == self.size || self.aborted {
                return None;
            }
            tokio::time::sleep(FLUSH_GRACE).await;
            self.aborted = true;
            // An error makes the server drop the connection mid-body.
            let cut = io::Error::new(io::ErrorKind::ConnectionAborted, "truncated by a fault");
            return Some((Err(cut), self));
        }
        let mut len = (self.stop - self.offset).min(CHUNK);
        if let Some((start, bytes_per_second)) = self.pace {
            // Ten chunks a second, so progress shows between them.
            len = len.min((bytes_per_second / 10).max(1));
            let due = Duration::from_secs_f64((self.offset + len) as f64 / bytes_per_second as f64);
            tokio::time::sleep_until((start + due).into()).await;
        }
        let chunk = self.source.chunk(self.offset, len);
        self.offset += len;
        lock(&self.shared).counters.bytes_served += len;
        Some((Ok(chunk), self))
    }
}

async fn download(
    Extract(shared): Extract<Shared>,
    Path((id, handle, _name)): Path<(String, String, String)>,
) -> Response {
    let mut state = lock(&shared);
    let (Ok(id), Ok(handle)) = (id.parse::<u64>(), handle.parse::<u64>()) else {
        state.counters.not_found += 1;
        return StatusCode::NOT_FOUND.into_response();
    };
    let content = match state.entries.get(&id) {
        Some(
            Entry::Item {
                hcontent_preview, ..
            }
            | Entry::Collection {
                hcontent_preview, ..
            },
        ) if *hcontent_preview == handle => {
            state.counters.previews += 1;
            return ([(CONTENT_TYPE, "image/png")], PNG).into_response();
        }
        Some(Entry::Item {
            item,
            hcontent_file,
            ..
        }) if *hcontent_file == handle => item.content.clone(),
        _ => {
            state.counters.not_found += 1;
            return StatusCode::NOT_FOUND.into_response();
        }
    };
    let mut size = content.size();
    let mut source = match content {
        Content::Vpk { seed, .. } => Source::Vpk { seed },
        Content::Bytes(bytes) => Source::Memory(bytes.into()),
    };
    let mut content_type = "application/octet-stream";
    let mut stop = None;
    let mut pace = None;
    for fault in &state.faults {
        match *fault {
            Fault::NotFound(f) if f == id => {
                state.counters.not_found += 1;
                return StatusCode::NOT_FOUND.into_response();
            }
            Fault::Image(f) if f == id => {
                source = Source::Memory(Bytes::from_static(PNG));
                content_type = "image/png";
                size = PNG.len() as u64;
            }
            Fault::Truncated { id: f, after } if f == id => stop = Some(after),
            Fault::Slow {
                id: f,
                bytes_per_second,
            } if f == id => pace = Some((Instant::now(), bytes_per_second.max(1))),
            _ => {}
        }
    }
    state.counters.downloads += 1;
    drop(state);
    let transfer = Transfer {
        shared,
        source,
        size,
        offset: 0,
        stop: stop.map_or(size, |after| after.min(size)),
        pace,
        aborted: false,
    };
    let body = Body::from_stream(futures_util::stream::unfold(transfer, Transfer::next));
    // The stream's length is unknown to the server, which then takes this
    // header as the length it promises.
    let headers = [
        (CONTENT_TYPE, content_type.to_owned()),
        (CONTENT_LENGTH, size.to_string()),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpk_bytes_do_not_depend_on_how_they_are_chunked() {
        let whole = Content::Vpk {
            size: 1_000,
            seed: 5,
        }
        .bytes();
        assert_eq!(whole[..4], VPK_MAGIC);
        let mut pieces = Vec::new();
        let mut offset = 0;
        for len in [1, 2, 3, 5, 7, 11, 13].into_iter().cycle() {
            let len = len.min(whole.len() - pieces.len());
            if len == 0 {
                break;
            }
            let mut buf = vec![0; len];
            fill_vpk(5, offset, &mut buf);
            pieces.extend_from_slice(&buf);
            offset += len as u64;
        }
        assert_eq!(pieces, whole);
    }
}
