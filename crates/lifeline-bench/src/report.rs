//! The bench's figures: a measurement is a count of events over seconds; the table and the
//! JSON print the same rows.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
}

impl Figure {
    pub fn new(name: impl Into<String>, events: u64, seconds: f64) -> Figure {
        Figure {
            name: name.into(),
            events,
            seconds,
            events_per_second: events as f64 / seconds.max(1e-9),
        }
    }

    pub fn rate(&self) -> f64 {
        self.events_per_second
    }
}

pub fn print_table(figures: &[Figure]) {
    println!(
        "{:<72} {:>9} {:>9} {:>11}",
        "measurement", "events", "seconds", "events/s"
    );
    for figure in figures {
        println!(
            "{:<72} {:>9} {:>9.3} {:>11.0}",
            figure.name, figure.events, figure.seconds, figure.events_per_second
        );
    }
}

/// One ratio row: what it compares and the value.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub name: String,
    pub value: f64,
}

pub fn print_ratios(ratios: &[Ratio]) {
    for ratio in ratios {
        println!("  {:<70} {:>8.3}", ratio.name, ratio.value);
    }
}
