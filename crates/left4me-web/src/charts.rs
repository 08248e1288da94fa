//! A server's graphs (players, CPU, memory) drawn by the panel as SVG:
//! no script, no outside service, and nothing the page's Content
//! Security Policy refuses (lines and text only, styled by classes from
//! the panel's stylesheet).

use left4me_app::ops::servers::HistoryRange;
use left4me_store::HistoryPoint;

/// The drawing area, in SVG units.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 150.0;
const LEFT: f64 = 48.0;
// Room for the last time label, centred on the right edge.
const RIGHT: f64 = 20.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

/// One series: its CSS class and the polylines it is drawn with (a gap
/// where the server did not run breaks the line).
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) class: &'static str,
    pub(crate) label: &'static str,
    pub(crate) lines: Vec<String>,
}

/// A label on an axis at its position.
#[derive(Debug, Clone)]
pub(crate) struct Tick {
    pub(crate) at: String,
    pub(crate) text: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Chart {
    pub(crate) id: &'static str,
    pub(crate) title: &'static str,
    pub(crate) series: Vec<Series>,
    pub(crate) y_ticks: Vec<Tick>,
    pub(crate) x_ticks: Vec<Tick>,
    /// The plot's bottom, right and left edges, for the axes.
    pub(crate) bottom: String,
    pub(crate) right: String,
    pub(crate) left: String,
    pub(crate) empty: bool,
}

/// The value of a point a series shows, if it has one.
type Value = fn(&HistoryPoint) -> Option<f64>;

/// The smallest "round" number at or above `v` (1, 2, 5 × 10^n).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// The graphs of `points` (oldest first) over `range` ending at `now`,
/// with times in `zone`.
pub(crate) fn charts(
    points: &[HistoryPoint],
    range: HistoryRange,
    now: i64,
    zone: &jiff::tz::TimeZone,
) -> Vec<Chart> {
    let mib = |p: &HistoryPoint| Some(p.memory_max as f64 / f64::from(1 << 20));
    vec![
        chart(
            "chart-players",
            "Players",
            points,
            range,
            now,
            zone,
            &[
                ("line-max", "most", |p| Some(p.players_max as f64)),
                ("line-avg", "on average", |p| Some(p.players_avg)),
            ],
            4.0,
            "",
        ),
        chart(
            "chart-cpu",
            "CPU (% of a core)",
            points,
            range,
            now,
            zone,
            &[("line-avg", "on average", |p| p.cpu_avg)],
            10.0,
            "%",
        ),
        chart(
            "chart-memory",
            "Memory (MiB)",
            points,
            range,
            now,
            zone,
            &[("line-max", "most", mib)],
            64.0,
            "",
        ),
    ]
}

#[allow(clippy::too_many_arguments)]
fn chart(
    id: &'static str,
    title: &'static str,
    points: &[HistoryPoint],
    range: HistoryRange,
    now: i64,
    zone: &jiff::tz::TimeZone,
    series: &[(&'static str, &'static str, Value)],
    least_top: f64,
    unit: &str,
) -> Chart {
    let tier = range.tier();
    let start = now - tier.span();
    let highest = points
        .iter()
        .flat_map(|p| series.iter().filter_map(|(_, _, value)| value(p)))
        .fold(0.0, f64::max);
    let top = nice_ceiling(highest.max(least_top));
    let x = |at: i64| LEFT + (at - start) as f64 / tier.span() as f64 * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| HEIGHT - BOTTOM - v / top * (HEIGHT - BOTTOM - TOP);
    let mut empty = true;
    let drawn = series
        .iter()
        .map(|(class, label, value)| {
            let mut lines: Vec<Vec<(f64, f64)>> = Vec::new();
            let mut last_at: Option<i64> = None;
            for point in points {
                let Some(v) = value(point) else {
                    last_at = None;
                    continue;
                };
                // More than a bucket and a half since the last: a gap.
                let joined = last_at.is_some_and(|l| point.at - l <= tier.bucket * 3 / 2);
                if !joined {
                    lines.push(Vec::new());
                }
                // The middle of the bucket.
                let at = point.at + tier.bucket / 2;
                lines
                    .last_mut()
                    .expect("a line was begun")
                    .push((x(at), y(v)));
                last_at = Some(point.at);
                empty = false;
            }
            Series {
                class,
                label,
                lines: lines
                    .into_iter()
                    // A lone point is drawn as a short flat line.
                    .map(|l| match l.as_slice() {
                        [(px, py)] => vec![(px - 1.5, *py), (px + 1.5, *py)],
                        _ => l,
                    })
                    .map(|l| {
                        l.iter()
                            .map(|(px, py)| format!("{},{}", fmt(*px), fmt(*py)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect(),
            }
        })
        .collect();
    let y_ticks = [0.0, top / 2.0, top]
        .iter()
        .map(|v| Tick {
            at: fmt(y(*v)),
            text: format!("{}{unit}", trim(*v)),
        })
        .collect();
    let pattern = match range {
        HistoryRange::Day => "%H:%M",
        HistoryRange::Week => "%a %d",
        HistoryRange::Month => "%b %d",
    };
    let x_ticks = (0..=4)
        .map(|i| {
            let at = start + tier.span() * i / 4;
            let text = jiff::Timestamp::from_second(at)
                .map(|t| t.to_zoned(zone.clone()).strftime(pattern).to_string())
                .unwrap_or_default();
            Tick {
                at: fmt(x(at)),
                text,
            }
        })
        .collect();
    Chart {
        id,
        title,
        series: drawn,
        y_ticks,
        x_ticks,
        bottom: fmt(HEIGHT - BOTTOM),
        right: fmt(WIDTH - RIGHT),
        left: fmt(LEFT),
        empty,
    }
}

/// A tick's number without needless decimals.
fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at: i64, players: i64) -> HistoryPoint {
        HistoryPoint {
            at,
            players_avg: players as f64,
            players_max: players,
            cpu_avg: Some(12.5),
            memory_max: 300 << 20,
        }
    }

    #[test]
    fn draws_lines_with_gaps_where_the_server_did_not_run() {
        let now = 1_700_000_000;
        let bucket = HistoryRange::Day.tier().bucket;
        let base = now - now % bucket - 20 * bucket;
        let points: Vec<_> = (0..5)
            .map(|i| point(base + i * bucket, 2))
            .chain((10..12).map(|i| point(base + i * bucket, 6)))
            .collect();
        let charts = charts(&points, HistoryRange::Day, now, &jiff::tz::TimeZone::UTC);
        let players = &charts[0];
        assert!(!players.empty);
        assert_eq!(players.series[0].lines.len(), 2, "a gap splits the line");
        assert_eq!(
            players.y_ticks.last().unwrap().text,
            "10",
            "6 players at most: the scale's top is 10"
        );
        assert_eq!(players.x_ticks.len(), 5);
        assert!(players.x_ticks.iter().all(|t| t.text.len() == 5), "HH:MM");
        let memory = &charts[2];
        assert_eq!(memory.y_ticks.last().unwrap().text, "500");
        let nothing = super::charts(&[], HistoryRange::Week, now, &jiff::tz::TimeZone::UTC);
        assert!(nothing.iter().all(|c| c.empty));
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(12.5), 20.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
    }
}
