//! [`RecordSeed`]: what a [`Decoder`](super::Decoder) builds records with — a serde type
//! ([`Typed`]), or a schema known only at run time
//! ([`RowSeed`](crate::row::RowSeed), Spark's `readStream.schema(userSchema)`).

use serde::de::{DeserializeOwned, Deserializer};
use std::fmt;
use std::marker::PhantomData;

/// Builds one record from a serde deserializer. A [`DeserializeSeed`](serde::de::DeserializeSeed)
/// that can be used again and again by reference, so a decoder holds one and pays
/// nothing per record for it.
pub trait RecordSeed: Send + 'static {
    /// The records built.
    type Value;

    /// Builds one record from `deserializer`.
    ///
    /// # Errors
    ///
    /// As the deserializer reports them.
    fn deserialize<'de, D: Deserializer<'de>>(
        &self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error>;

    /// What the records are, for error messages.
    fn describe(&self) -> String;
}

/// Records of the serde type `T`: the seed of every typed decoder.
pub struct Typed<T>(PhantomData<fn() -> T>);

impl<T> Typed<T> {
    /// The seed of `T`.
    pub fn new() -> Self {
        Typed(PhantomData)
    }
}

impl<T> Default for Typed<T> {
    fn default() -> Self {
        Typed::new()
    }
}

impl<T> Clone for Typed<T> {
    fn clone(&self) -> Self {
        Typed::new()
    }
}

impl<T> fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Typed<{}>", std::any::type_name::<T>())
    }
}

impl<T: DeserializeOwned + 'static> RecordSeed for Typed<T> {
    type Value = T;

    #[inline(always)]
    fn deserialize<'de, D: Deserializer<'de>>(&self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(deserializer)
    }

    fn describe(&self) -> String {
        std::any::type_name::<T>().to_string()
    }
}

/// `seed` as a serde [`DeserializeSeed`](serde::de::DeserializeSeed), for APIs that
/// take one.
pub(crate) struct BySeed<'s, S>(pub(crate) &'s S);

impl<'de, S: RecordSeed> serde::de::DeserializeSeed<'de> for BySeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(deserializer)
    }
}
