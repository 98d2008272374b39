//! How a Kafka source turns record values into its records' values: kept raw
//! ([`RawValue`]) or decoded by the project's decoders ([`FormatValue`]: text, CSV, JSON).

use crate::format::{DecodeOptions, Decoder, Format, Malformed, RecordSeed, Typed, Verdict};
use serde::de::DeserializeOwned;

/// Turns a Kafka record's value (`None`: a tombstone) into the value a
/// [`KafkaRecord`](super::KafkaRecord) carries, with the format module's verdicts: a
/// [`Verdict::Dropped`] value is counted and quarantined, a [`Verdict::Failed`] one fails
/// the query (see [`kafka::source`](super::source)).
///
/// Implement it for a format of your own (Avro, protobuf); it runs on the source's
/// thread, once per record.
pub trait ValueDecoder: Send + 'static {
    /// The decoded value.
    type Value: Send + 'static;

    /// Decodes one value.
    fn decode(&mut self, value: Option<&[u8]>) -> Verdict<Self::Value>;
}

/// Keeps values as they are: `Option<Vec<u8>>`, `None` for a tombstone (Spark's binary
/// `value` column). Never malformed.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawValue;

impl ValueDecoder for RawValue {
    type Value = Option<Vec<u8>>;

    #[inline]
    fn decode(&mut self, value: Option<&[u8]>) -> Verdict<Option<Vec<u8>>> {
        Verdict::Row(value.map(<[u8]>::to_vec))
    }
}

/// Decodes each value as one record of a [`Format`] (text, a CSV line, a JSON object)
/// into `T`, with Spark's malformed-record modes ([`DecodeOptions`]). A value is one
/// record, whatever newlines it holds (a CSV `header` option is ignored: values have no
/// header). A tombstone (null value) or a blank one is malformed: it holds no record.
#[derive(Debug)]
pub struct FormatValue<T, S = Typed<T>> {
    decoder: Result<Decoder<T, S>, String>,
    max_record_bytes: usize,
}

impl<T: DeserializeOwned + Send + 'static> FormatValue<T> {
    /// Values of `format`, decoded into `T` under `options`. A type that `format`
    /// cannot fill is reported by [`check`](Self::check) (and fails `start()`).
    pub fn new(format: &Format, options: &DecodeOptions) -> Self {
        Self::with_seed(Typed::new(), format, options)
    }
}

impl<T: Send + 'static, S: RecordSeed<Value = T>> FormatValue<T, S> {
    /// Values of `format`, built with `seed` (for [`Row`](crate::row::Row)s of a schema
    /// known at run time: [`RowSeed`](crate::row::RowSeed)).
    pub fn with_seed(seed: S, format: &Format, options: &DecodeOptions) -> Self {
        let format = match format {
            Format::Csv(csv) => Format::Csv(csv.clone().header(false)),
            other => other.clone(),
        };
        FormatValue {
            decoder: Decoder::with_seed(seed, &format, options).map_err(|e| e.0),
            max_record_bytes: options.max_record_len(),
        }
    }

    /// Whether the record type can be decoded from the format at all.
    ///
    /// # Errors
    ///
    /// What is wrong with the type (as for the file source).
    pub fn check(&self) -> Result<(), String> {
        self.decoder.as_ref().map(|_| ()).map_err(Clone::clone)
    }
}

impl<T: Send + 'static, S: RecordSeed<Value = T> + Send + 'static> ValueDecoder
    for FormatValue<T, S>
{
    type Value = T;

    fn decode(&mut self, value: Option<&[u8]>) -> Verdict<T> {
        let decoder = match &mut self.decoder {
            Ok(decoder) => decoder,
            Err(message) => {
                return Verdict::Failed(Box::new(Malformed {
                    field: None,
                    reason: message.clone(),
                    record: String::new(),
                }))
            }
        };
        let Some(value) = value else {
            return Verdict::Dropped(Box::new(Malformed {
                field: None,
                reason: "a null value (tombstone) holds no record".into(),
                record: String::new(),
            }));
        };
        // Every value is a file of one record: no state carries over between values.
        decoder.resume_file(false);
        let verdict = if value.len() > self.max_record_bytes {
            decoder.decode(&value[..self.max_record_bytes], Some(value.len() as u64))
        } else {
            decoder.decode(value, None)
        };
        match verdict {
            Verdict::Skipped => Verdict::Dropped(Box::new(Malformed {
                field: None,
                reason: "a blank value holds no record".into(),
                record: String::from_utf8_lossy(&value[..value.len().min(1024)]).into_owned(),
            })),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{CsvOptions, ParseMode};

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Reading {
        pump: String,
        psi: f64,
    }

    #[test]
    fn json_values_decode_and_bad_ones_are_dropped() {
        let options = DecodeOptions::default().mode(ParseMode::DropMalformed);
        let mut decoder = FormatValue::<Reading>::new(&Format::JsonLines, &options);
        assert_eq!(
            decoder.decode(Some(br#"{"pump":"p1","psi":0.5}"#)),
            Verdict::Row(Reading {
                pump: "p1".into(),
                psi: 0.5
            })
        );
        for bad in [&b"{not json"[..], b"{\"pump\":\"p2\"}", b"  "] {
            assert!(
                matches!(decoder.decode(Some(bad)), Verdict::Dropped(_)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let Verdict::Dropped(tombstone) = decoder.decode(None) else {
            panic!("a tombstone is malformed")
        };
        assert!(tombstone.reason.contains("tombstone"), "{tombstone:?}");
    }

    #[test]
    fn csv_values_ignore_the_header_option_and_fail_fast_fails() {
        let options = DecodeOptions::default().mode(ParseMode::FailFast);
        let format = Format::Csv(CsvOptions::default().header(true));
        let mut decoder = FormatValue::<Reading>::new(&format, &options);
        // The first value is data, not a header.
        assert_eq!(
            decoder.decode(Some(b"p1,0.25")),
            Verdict::Row(Reading {
                pump: "p1".into(),
                psi: 0.25
            })
        );
        assert!(matches!(
            decoder.decode(Some(b"p1,high")),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn raw_values_are_kept() {
        assert_eq!(
            RawValue.decode(Some(b"x")),
            Verdict::Row(Some(b"x".to_vec()))
        );
        assert_eq!(RawValue.decode(None), Verdict::Row(None));
    }
}
