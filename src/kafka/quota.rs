//! `max_offsets_per_trigger`: how many offsets of each partition one micro-batch takes,
//! as Spark's Kafka source decides it (`KafkaMicroBatchStream.rateLimit`, Spark 3).

/// The end offset (exclusive) of each partition's part of the next micro-batch, given
/// each partition's `(from, until)`: the next offset to read and the end of what is
/// there now (its high watermark). At most `limit` offsets in all, split in proportion
/// to each partition's backlog `until - from`.
///
/// Spark's arithmetic, kept exactly: a partition's share `limit * backlog / total` is
/// rounded down, but up when it is below 1 (so a small partition is never starved,
/// and the total may exceed `limit` by up to one offset per partition); no share goes
/// past the partition's `until`; with nothing waiting anywhere every partition ends at
/// its `until`.
pub(crate) fn rate_limit(limit: u64, ranges: &[(i64, i64)]) -> Vec<i64> {
    let total: i64 = ranges
        .iter()
        .map(|&(from, until)| (until - from).max(0))
        .sum();
    if total < 1 {
        return ranges.iter().map(|&(_, until)| until).collect();
    }
    let total = total as f64;
    ranges
        .iter()
        .map(|&(from, until)| {
            let size = until - from;
            if size <= 0 {
                return until;
            }
            let prorate = limit as f64 * (size as f64 / total);
            let prorate = if prorate < 1.0 {
                prorate.ceil()
            } else {
                prorate.floor()
            } as i64;
            until.min(from.saturating_add(prorate))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::rate_limit;

    #[test]
    fn split_in_proportion_to_backlog() {
        // Backlogs 300 and 100: a limit of 100 takes 75 and 25.
        assert_eq!(rate_limit(100, &[(0, 300), (1000, 1100)]), [75, 1025]);
        // A limit above the backlog takes everything.
        assert_eq!(rate_limit(1000, &[(5, 10), (0, 2)]), [10, 2]);
        // Shares below 1 round up: nobody starves.
        assert_eq!(rate_limit(1, &[(0, 1000), (0, 1)]), [1, 1]);
        assert_eq!(rate_limit(2, &[(0, 1000), (0, 1)]), [1, 1]);
        // Nothing waiting: every partition stays at its end.
        assert_eq!(rate_limit(10, &[(7, 7), (3, 3)]), [7, 3]);
        // A partition behind its reader (from past until) is left at until.
        assert_eq!(rate_limit(10, &[(9, 5), (0, 100)]), [5, 10]);
    }

    #[test]
    fn never_more_than_limit_plus_one_per_partition() {
        let mut seed = 7u64;
        for _ in 0..2000 {
            let mut next = || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            let limit = next() % 500 + 1;
            let ranges: Vec<(i64, i64)> = (0..(next() % 6 + 1))
                .map(|_| {
                    let from = (next() % 1000) as i64;
                    (from, from + (next() % 400) as i64)
                })
                .collect();
            let ends = rate_limit(limit, &ranges);
            let taken: i64 = ranges
                .iter()
                .zip(&ends)
                .map(|(&(from, _), &end)| end - from)
                .sum();
            let backlog: i64 = ranges.iter().map(|&(from, until)| until - from).sum();
            assert!(taken <= backlog, "{ranges:?} {ends:?}");
            assert!(
                taken <= limit as i64 + ranges.len() as i64,
                "{limit} {ranges:?} {ends:?}"
            );
            for (&(from, until), &end) in ranges.iter().zip(&ends) {
                assert!(from <= end && end <= until, "{ranges:?} {ends:?}");
            }
            // Enough waiting: at least the limit minus the rounding is taken.
            if backlog as u64 >= limit {
                assert!(
                    taken >= limit as i64 - ranges.len() as i64,
                    "{limit} {ranges:?} {ends:?}"
                );
            }
        }
    }
}
