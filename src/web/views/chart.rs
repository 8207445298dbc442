//! The geometry of the 30-day bar chart, drawn by the page as inline SVG: no script and
//! no image requests, so it passes the page's strict Content-Security-Policy.

use serde::Serialize;

use crate::i18n::Lang;
use crate::store::ByDay;

/// Sizes in the SVG's user units. The SVG scales to the width of its box, so the page draws
/// the chart twice, one for wide screens and one for phones, and CSS shows the one whose
/// text comes out readable.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub width: f64,
    pub height: f64,
}

pub const WIDE: Size = Size {
    width: 1000.0,
    height: 210.0,
};
pub const NARROW: Size = Size {
    width: 360.0,
    height: 200.0,
};

const LEFT: f64 = 40.0;
/// Room for half of the newest day's label, which sits under the last bar.
const RIGHT: f64 = 28.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;
/// Share of each day's slot the bar fills; the rest is the gap between bars.
const BAR_FILL: f64 = 0.7;

#[derive(Debug, Serialize)]
pub struct Chart {
    pub width: f64,
    pub height: f64,
    pub title: String,
    pub desc: String,
    pub bars: Vec<Bar>,
    pub y_ticks: Vec<Tick>,
    pub x_labels: Vec<Tick>,
    /// Where the plot's baseline and left edge are, for the axis lines.
    pub base_y: f64,
    pub left_x: f64,
    pub right_x: f64,
}

#[derive(Debug, Serialize)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    /// "25 Nov: 3", the bar's tooltip.
    pub label: String,
}

#[derive(Debug, Serialize)]
pub struct Tick {
    pub x: f64,
    pub y: f64,
    pub label: String,
    /// SVG text-anchor.
    pub anchor: &'static str,
}

pub fn chart(days: &[ByDay], lang: Lang, size: Size) -> Chart {
    let max = days.iter().map(|d| d.count).max().unwrap_or(0);
    let top = nice_ceiling(max);
    let plot_w = size.width - LEFT - RIGHT;
    let plot_h = size.height - TOP - BOTTOM;
    let base_y = TOP + plot_h;
    let slot = plot_w / days.len().max(1) as f64;
    let label_of = |d: &ByDay| {
        crate::time::parse_rfc3339(&format!("{}T00:00:00Z", d.date))
            .map_or_else(|| d.date.clone(), |ms| lang.day_month(ms))
    };
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let height = round1(d.count as f64 / top as f64 * plot_h);
            Bar {
                x: round1(LEFT + i as f64 * slot + slot * (1.0 - BAR_FILL) / 2.0),
                y: round1(base_y - height),
                width: round1(slot * BAR_FILL),
                height,
                label: format!("{}: {}", label_of(d), d.count),
            }
        })
        .collect();
    let y_ticks = [0, top / 2, top]
        .iter()
        .map(|&v| Tick {
            x: LEFT - 6.0,
            y: round1(base_y - v as f64 / top as f64 * plot_h),
            label: v.to_string(),
            anchor: "end",
        })
        .collect();
    // A label every week, counted back from today so the newest day is always labelled.
    let last = days.len().saturating_sub(1);
    let x_labels = days
        .iter()
        .enumerate()
        .filter(|(i, _)| (last - i) % 7 == 0)
        .map(|(i, d)| Tick {
            x: round1(LEFT + (i as f64 + 0.5) * slot),
            y: size.height - 8.0,
            label: label_of(d),
            anchor: "middle",
        })
        .collect();
    let total: i64 = days.iter().map(|d| d.count).sum();
    let desc = match days.iter().filter(|d| d.count > 0).max_by_key(|d| d.count) {
        Some(busiest) => lang
            .t("chart_desc")
            .replace("{total}", &total.to_string())
            .replace("{day}", &label_of(busiest))
            .replace("{max}", &busiest.count.to_string()),
        None => lang.t("chart_empty").to_string(),
    };
    Chart {
        width: size.width,
        height: size.height,
        title: lang.t("chart_title").to_string(),
        desc,
        bars,
        y_ticks,
        x_labels,
        base_y,
        left_x: LEFT,
        right_x: size.width - RIGHT,
    }
}

/// The axis top: the smallest of 2, 4, 6 or 10 times a power of ten that is at least `max` (and
/// even, so the middle tick is a whole number), never less than 2.
fn nice_ceiling(max: i64) -> i64 {
    let mut step = 1i64;
    loop {
        for m in [2, 4, 6, 10] {
            let top = step.saturating_mul(m);
            if top >= max || top == i64::MAX {
                return top;
            }
        }
        step = step.saturating_mul(10);
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(counts: &[i64]) -> Vec<ByDay> {
        counts
            .iter()
            .enumerate()
            .map(|(i, &count)| ByDay {
                date: format!("2026-11-{:02}", i + 1),
                count,
            })
            .collect()
    }

    #[test]
    fn axis_tops_are_round_and_cover_the_maximum() {
        assert_eq!(nice_ceiling(0), 2);
        assert_eq!(nice_ceiling(3), 4);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(35), 40);
        assert_eq!(nice_ceiling(41), 60);
        assert_eq!(nice_ceiling(61), 100);
        assert_eq!(nice_ceiling(i64::MAX), i64::MAX);
    }

    #[test]
    fn bars_fit_the_plot_and_today_is_labelled() {
        let mut counts = vec![0; 30];
        counts[24] = 5;
        counts[29] = 2;
        let c = chart(&days(&counts), Lang::En, WIDE);
        assert_eq!(c.bars.len(), 30);
        for b in &c.bars {
            assert!(b.x >= LEFT && b.x + b.width <= WIDE.width - RIGHT + 0.1);
            assert!(b.y >= TOP - 0.1 && (b.y + b.height - c.base_y).abs() < 0.2);
        }
        assert_eq!(c.bars[24].label, "25 Nov: 5");
        assert_eq!(c.x_labels.last().unwrap().label, "30 Nov");
        assert_eq!(c.desc, "7 in 30 days; busiest day 25 Nov with 5.");
        assert_eq!(
            chart(&days(&[0; 30]), Lang::Ru, NARROW).desc,
            Lang::Ru.t("chart_empty")
        );
    }
}
