//! Merging control signals from several input edges into one stream of signals.
//!
//! A pure state machine (no threads, no I/O) so every rule is unit-tested directly:
//! * end-of-stream is forwarded once, after every input ended;
//! * the watermark forwarded is the minimum over inputs still running and not idle, and
//!   only when it advances; an input that announced [`WatermarkStatus::Idle`] is left out
//!   until it announces `Active`, and when every running input is idle the task forwards
//!   `Idle` itself (and `Active` when one wakes up);
//! * an epoch marker is forwarded once it has arrived on every input still running
//!   (inputs that ended count as having delivered it). This is the unaligned,
//!   at-least-once rule: records arriving on an input after its marker are processed at
//!   once, not held back. In *aligned* mode ([`FanIn::is_blocked`]) an input that
//!   delivered the marker of the oldest pending epoch is held back until that epoch's
//!   marker arrived everywhere, so the snapshot is a consistent cut (exactly-once state).

use crate::event::{Epoch, Signal, Timestamp, WatermarkStatus};
use std::collections::BTreeMap;

/// Signal bookkeeping for a task with `inputs` input edges.
#[derive(Debug, Clone)]
pub(crate) struct FanIn {
    aligned: bool,
    ended: Vec<bool>,
    running: usize,
    watermarks: Vec<Timestamp>,
    /// Inputs that announced they are idle.
    idle: Vec<bool>,
    /// Whether `Idle` was forwarded (every running input idle) and not yet revoked.
    forwarded_idle: bool,
    forwarded_watermark: Timestamp,
    /// For each epoch not yet forwarded, which inputs delivered its marker.
    markers: BTreeMap<Epoch, Vec<bool>>,
}

impl FanIn {
    pub(crate) fn new(inputs: usize, aligned: bool) -> Self {
        FanIn {
            aligned,
            ended: vec![false; inputs],
            running: inputs,
            watermarks: vec![Timestamp::MIN; inputs],
            idle: vec![false; inputs],
            forwarded_idle: false,
            forwarded_watermark: Timestamp::MIN,
            markers: BTreeMap::new(),
        }
    }

    /// `true` once every input ended.
    pub(crate) fn all_ended(&self) -> bool {
        self.running == 0
    }

    /// `true` if `input` must not be read now: aligned mode, and it already delivered
    /// the marker of the epoch still waiting for other inputs.
    pub(crate) fn is_blocked(&self, input: usize) -> bool {
        self.aligned
            && self
                .markers
                .first_key_value()
                .is_some_and(|(_, seen)| seen[input])
    }

    /// `true` if `input` already ended.
    pub(crate) fn is_ended(&self, input: usize) -> bool {
        self.ended[input]
    }

    /// Handles a control signal from `input`, appending what to forward to `out`.
    pub(crate) fn on_signal(&mut self, input: usize, signal: Signal, out: &mut Vec<Signal>) {
        match signal {
            Signal::Watermark(time) => {
                if time > self.watermarks[input] {
                    self.watermarks[input] = time;
                }
                self.advance_watermark(out);
            }
            Signal::Marker(epoch) => {
                let inputs = self.ended.len();
                let seen = self
                    .markers
                    .entry(epoch)
                    .or_insert_with(|| vec![false; inputs]);
                seen[input] = true;
                self.release_markers(out);
            }
            // A latency marker belongs to no alignment: it passes as it comes.
            Signal::Latency(_) => out.push(signal),
            Signal::Status(status) => {
                self.idle[input] = status == WatermarkStatus::Idle;
                self.update_status(out);
                self.advance_watermark(out);
            }
            Signal::End => {
                if !self.ended[input] {
                    self.ended[input] = true;
                    self.running -= 1;
                    self.release_markers(out);
                    self.advance_watermark(out);
                    if self.running > 0 {
                        self.update_status(out);
                    }
                    if self.running == 0 {
                        out.push(Signal::End);
                    }
                }
            }
        }
    }

    /// Forwards `Idle` when every running input is idle, `Active` when that stops.
    fn update_status(&mut self, out: &mut Vec<Signal>) {
        let all_idle = self
            .idle
            .iter()
            .zip(&self.ended)
            .all(|(idle, ended)| *idle || *ended);
        if all_idle != self.forwarded_idle {
            self.forwarded_idle = all_idle;
            out.push(Signal::Status(if all_idle {
                WatermarkStatus::Idle
            } else {
                WatermarkStatus::Active
            }));
        }
    }

    fn advance_watermark(&mut self, out: &mut Vec<Signal>) {
        let min = self
            .watermarks
            .iter()
            .zip(self.ended.iter().zip(&self.idle))
            .filter(|(_, (ended, idle))| !**ended && !**idle)
            .map(|(time, _)| *time)
            .min();
        if let Some(min) = min {
            if min > self.forwarded_watermark {
                self.forwarded_watermark = min;
                out.push(Signal::Watermark(min));
            }
        }
    }

    fn release_markers(&mut self, out: &mut Vec<Signal>) {
        // Epochs complete in order: a source emits markers in increasing epoch order, so
        // only the oldest pending epoch can be next.
        while let Some((&epoch, seen)) = self.markers.first_key_value() {
            let complete = seen
                .iter()
                .zip(&self.ended)
                .all(|(seen, ended)| *seen || *ended);
            if !complete {
                break;
            }
            self.markers.remove(&epoch);
            out.push(Signal::Marker(epoch));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn feed(fan_in: &mut FanIn, input: usize, signal: Signal) -> Vec<Signal> {
        let mut out = Vec::new();
        fan_in.on_signal(input, signal, &mut out);
        out
    }

    #[test]
    fn aligned_mode_blocks_inputs_that_delivered_the_marker() {
        let mut f = FanIn::new(2, true);
        assert!(!f.is_blocked(0));
        assert!(feed(&mut f, 0, Signal::Marker(Epoch(1))).is_empty());
        assert!(f.is_blocked(0));
        assert!(!f.is_blocked(1));
        assert_eq!(
            feed(&mut f, 1, Signal::Marker(Epoch(1))),
            vec![Signal::Marker(Epoch(1))]
        );
        assert!(!f.is_blocked(0) && !f.is_blocked(1));
        // An input that ends releases the others.
        assert!(feed(&mut f, 1, Signal::Marker(Epoch(2))).is_empty());
        assert!(f.is_blocked(1));
        assert_eq!(feed(&mut f, 0, Signal::End), vec![Signal::Marker(Epoch(2))]);
        assert!(!f.is_blocked(1));
        let unaligned = {
            let mut f = FanIn::new(2, false);
            feed(&mut f, 0, Signal::Marker(Epoch(1)));
            f.is_blocked(0)
        };
        assert!(!unaligned);
    }

    #[test]
    fn end_is_forwarded_once_after_all_inputs() {
        let mut f = FanIn::new(3, false);
        assert!(feed(&mut f, 0, Signal::End).is_empty());
        assert!(feed(&mut f, 0, Signal::End).is_empty());
        assert!(feed(&mut f, 2, Signal::End).is_empty());
        assert_eq!(feed(&mut f, 1, Signal::End), vec![Signal::End]);
        assert!(f.all_ended());
    }

    #[test]
    fn watermark_is_the_minimum_of_running_inputs() {
        let mut f = FanIn::new(2, false);
        assert!(feed(&mut f, 0, Signal::Watermark(Timestamp(10))).is_empty());
        assert_eq!(
            feed(&mut f, 1, Signal::Watermark(Timestamp(5))),
            vec![Signal::Watermark(Timestamp(5))]
        );
        // Not an advance: input 1 is still at 5.
        assert!(feed(&mut f, 0, Signal::Watermark(Timestamp(20))).is_empty());
        // Input 1 ends: the minimum over running inputs is now input 0's 20.
        assert_eq!(
            feed(&mut f, 1, Signal::End),
            vec![Signal::Watermark(Timestamp(20))]
        );
    }

    #[test]
    fn marker_waits_for_every_running_input() {
        let mut f = FanIn::new(3, false);
        assert!(feed(&mut f, 0, Signal::Marker(Epoch(1))).is_empty());
        assert!(feed(&mut f, 0, Signal::Marker(Epoch(2))).is_empty());
        assert!(feed(&mut f, 1, Signal::Marker(Epoch(1))).is_empty());
        // Input 2 ends without markers: both pending epochs complete, in order.
        assert_eq!(feed(&mut f, 2, Signal::End), vec![Signal::Marker(Epoch(1))]);
        assert_eq!(
            feed(&mut f, 1, Signal::Marker(Epoch(2))),
            vec![Signal::Marker(Epoch(2))]
        );
    }

    #[test]
    fn idle_inputs_do_not_hold_the_watermark_back() {
        let idle = Signal::Status(WatermarkStatus::Idle);
        let active = Signal::Status(WatermarkStatus::Active);
        let mut f = FanIn::new(2, false);
        assert!(feed(&mut f, 0, Signal::Watermark(Timestamp(10))).is_empty());
        // Input 1 never produced a watermark; once idle, input 0 alone decides.
        assert_eq!(
            feed(&mut f, 1, idle),
            vec![Signal::Watermark(Timestamp(10))]
        );
        assert_eq!(
            feed(&mut f, 0, Signal::Watermark(Timestamp(30))),
            vec![Signal::Watermark(Timestamp(30))]
        );
        // Input 1 rejoins: its watermark counts again, but the forwarded one never goes
        // back.
        assert!(feed(&mut f, 1, active).is_empty());
        assert!(feed(&mut f, 1, Signal::Watermark(Timestamp(20))).is_empty());
        assert!(feed(&mut f, 0, Signal::Watermark(Timestamp(40))).is_empty());
        assert_eq!(
            feed(&mut f, 1, Signal::Watermark(Timestamp(35))),
            vec![Signal::Watermark(Timestamp(35))]
        );
        // Every running input idle: the task is idle itself, until one wakes.
        assert!(feed(&mut f, 0, idle).is_empty());
        assert_eq!(feed(&mut f, 1, idle), vec![idle]);
        assert_eq!(
            feed(&mut f, 0, active),
            vec![active, Signal::Watermark(Timestamp(40))]
        );
        // An input that ends while the other is idle leaves an idle task.
        assert_eq!(feed(&mut f, 0, Signal::End), vec![idle]);
    }
}
