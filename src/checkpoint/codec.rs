//! The snapshot codec: serde values to bytes and back.
//!
//! Every snapshot and log payload that rivulet itself encodes goes through [`encode`] and
//! [`decode`], so the format is chosen in one place and can be swapped here alone. Today
//! it is bincode 2's serde API with one fixed configuration,
//! [`bincode::config::standard()`]: little-endian, variable-length integers. Changing the
//! configuration changes the bytes, so it would need a version in the snapshot.
//!
//! Decoding adds a size limit (which does not change the format): bincode allocates a
//! string or byte buffer of the length the input claims before reading it, so without a
//! limit a few corrupt bytes claiming a length of 2^60 abort the process. [`decode`]
//! caps what a value may claim by the input's size class (1 MiB, 256 MiB, 4 GiB, the
//! largest log payload), so a corrupt input costs at most an allocation of its size
//! class, and a valid one, which never claims more than its own length, always decodes.
//!
//! ```
//! use rivulet::checkpoint::codec::{decode, encode};
//!
//! let state = vec![("click".to_string(), 3u64), ("buy".to_string(), 1)];
//! let bytes = encode(&state)?;
//! let back: Vec<(String, u64)> = decode(&bytes)?;
//! assert_eq!(back, state);
//! # Ok::<(), rivulet::checkpoint::codec::CodecError>(())
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The one bincode configuration rivulet uses.
fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

const MIB: usize = 1 << 20;
/// The largest payload a log entry can hold.
const LOG_PAYLOAD_MAX: usize = u32::MAX as usize;

/// Encodes `value`.
///
/// # Errors
///
/// [`CodecError::Encode`] if the value's `Serialize` implementation fails or asks for
/// something bincode cannot represent (such as a sequence of unknown length).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, config())?)
}

/// Encodes `value` at the end of `buffer` (the same bytes [`encode`] returns), so a hot
/// path can reuse one buffer instead of allocating per value.
///
/// # Errors
///
/// As [`encode`]; on error `buffer` may hold a partial encoding after its old contents.
pub fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buffer: &mut Vec<u8>,
) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, buffer, config())?;
    Ok(())
}

/// Decodes a value that [`encode`] produced. All of `bytes` must be used.
///
/// # Errors
///
/// [`CodecError::Decode`] if the bytes are not a valid encoding of a `T` (truncated,
/// wrong type, invalid UTF-8 and so on); [`CodecError::TrailingBytes`] if a `T` was
/// decoded but bytes are left over.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    // A valid encoding claims (for strings and byte buffers) at most its own length, so
    // any limit at or above `bytes.len()` accepts every valid input.
    let (value, consumed) = match bytes.len() {
        len if len <= MIB => decode_limited::<T, MIB>(bytes)?,
        len if len <= 256 * MIB => decode_limited::<T, { 256 * MIB }>(bytes)?,
        len if len <= LOG_PAYLOAD_MAX => decode_limited::<T, LOG_PAYLOAD_MAX>(bytes)?,
        _ => bincode::serde::decode_from_slice(bytes, config())?,
    };
    if consumed != bytes.len() {
        return Err(CodecError::TrailingBytes {
            consumed,
            len: bytes.len(),
        });
    }
    Ok(value)
}

/// Decodes with [`config`] plus a limit on the bytes a value may claim.
fn decode_limited<T: DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    bincode::serde::decode_from_slice(bytes, config().with_limit::<LIMIT>())
}

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be encoded.
    #[error("could not encode a snapshot value: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    /// The bytes are not a valid encoding of the expected type.
    #[error("could not decode a snapshot value: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// A value was decoded but bytes were left over: the bytes are not what was encoded,
    /// or were decoded as the wrong type.
    #[error("{} trailing bytes after a snapshot value ({consumed} of {len} bytes used)", len - consumed)]
    TrailingBytes {
        /// Bytes the value used.
        consumed: usize,
        /// Bytes given.
        len: usize,
    },
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        Pair(i32, String),
        Named { x: f64, tags: Vec<String> },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct State {
        epoch: u64,
        counts: BTreeMap<String, i64>,
        shapes: Vec<Shape>,
        note: Option<String>,
        raw: Vec<u8>,
    }

    fn sample() -> State {
        State {
            epoch: 7,
            counts: [("click".to_string(), 3), ("buy".to_string(), -1)].into(),
            shapes: vec![
                Shape::Unit,
                Shape::Pair(-5, "p".into()),
                Shape::Named {
                    x: 1.5,
                    tags: vec!["a".into(), "".into()],
                },
            ],
            note: None,
            raw: vec![0, 1, 255],
        }
    }

    #[test]
    fn values_round_trip() {
        let state = sample();
        let bytes = encode(&state).unwrap();
        assert_eq!(decode::<State>(&bytes).unwrap(), state);
        assert_eq!(decode::<()>(&encode(&()).unwrap()).unwrap(), ());
        let text: &str = "unsized";
        assert_eq!(decode::<String>(&encode(text).unwrap()).unwrap(), text);
    }

    #[test]
    fn the_configuration_is_pinned() {
        // bincode standard(): varint integers, little-endian, length-prefixed strings.
        assert_eq!(encode(&(1u32, "ab")).unwrap(), vec![1, 2, b'a', b'b']);
        assert_eq!(encode(&300u64).unwrap(), vec![251, 0x2c, 0x01]);
        assert_eq!(encode(&-1i32).unwrap(), vec![1]);
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&sample()).unwrap();
        bytes.push(0);
        match decode::<State>(&bytes) {
            Err(CodecError::TrailingBytes { consumed, len }) => {
                assert_eq!((consumed + 1, len), (bytes.len(), bytes.len()));
            }
            other => panic!("expected TrailingBytes, got {other:?}"),
        }
        let error = decode::<u8>(&[1, 2, 3]).unwrap_err();
        assert!(error.to_string().contains("2 trailing bytes"), "{error}");
    }

    #[test]
    fn truncated_or_wrong_bytes_are_errors() {
        let bytes = encode(&sample()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode::<State>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(
            decode::<String>(&[2, 0xff, 0xfe]),
            Err(CodecError::Decode(_))
        ));
        assert!(matches!(decode::<bool>(&[7]), Err(CodecError::Decode(_))));
        // A huge claimed length fails cleanly instead of allocating (and aborting).
        let huge = [253, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(matches!(
            decode::<String>(&huge),
            Err(CodecError::Decode(
                bincode::error::DecodeError::LimitExceeded
            ))
        ));
        assert!(decode::<Vec<u8>>(&huge).is_err());
        assert!(decode::<(u8, String)>(&[1, 252, 0, 0, 0, 0x10]).is_err());
    }

    #[test]
    fn values_near_the_size_classes_round_trip() {
        for len in [MIB - 1, MIB, MIB + 1, 3 * MIB] {
            let text = "x".repeat(len);
            let bytes = encode(&text).unwrap();
            assert_eq!(decode::<String>(&bytes).unwrap().len(), len);
            // Two strings: the claims add up to less than the input length.
            let pair = (text.clone(), text);
            let bytes = encode(&pair).unwrap();
            assert_eq!(decode::<(String, String)>(&bytes).unwrap(), pair);
        }
    }

    proptest! {
        #[test]
        fn random_values_round_trip(
            value in proptest::collection::vec(
                (any::<u64>(), ".*", proptest::option::of(any::<i16>()), proptest::collection::vec(any::<u8>(), 0..20)),
                0..20,
            )
        ) {
            let bytes = encode(&value).unwrap();
            prop_assert_eq!(decode::<Vec<(u64, String, Option<i16>, Vec<u8>)>>(&bytes).unwrap(), value);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode::<State>(&bytes);
            let _ = decode::<Vec<String>>(&bytes);
        }
    }
}
