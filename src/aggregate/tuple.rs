//! Tuples of 2 to 8 aggregates are aggregates: each element sees every record, the
//! accumulator and the result are the tuples of the elements' accumulators and results,
//! and the tuple is mergeable when every element is. Nest tuples for more than 8.

use super::Aggregate;

macro_rules! tuple {
    ($($a:ident $i:tt),+) => {
        impl<T, $($a: Aggregate<T>),+> Aggregate<T> for ($($a,)+) {
            type Acc = ($($a::Acc,)+);
            type Out = ($($a::Out,)+);

            #[inline]
            fn init(&self) -> Self::Acc {
                ($(self.$i.init(),)+)
            }

            #[inline]
            fn add(&self, acc: &mut Self::Acc, record: &T) {
                $(self.$i.add(&mut acc.$i, record);)+
            }

            fn mergeable(&self) -> bool {
                $(self.$i.mergeable())&&+
            }

            #[inline]
            fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
                $(self.$i.merge(&mut acc.$i, &other.$i);)+
            }

            #[inline]
            fn result(&self, acc: &Self::Acc) -> Self::Out {
                ($(self.$i.result(&acc.$i),)+)
            }
        }
    };
}

tuple!(A0 0, A1 1);
tuple!(A0 0, A1 1, A2 2);
tuple!(A0 0, A1 1, A2 2, A3 3);
tuple!(A0 0, A1 1, A2 2, A3 3, A4 4);
tuple!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5);
tuple!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6);
tuple!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7);
