//! What a join emits, per join type: a matched pair, and (outer joins) a row that can no
//! longer match. One small type per join type, so the operator's hot path has the choice
//! made at compile time.

/// The rows a join type emits. `LEFT_OUTER` / `RIGHT_OUTER`: unmatched rows of that side
/// are emitted (with the other side `None`) once no future row can match them. `SEMI`: a
/// left row is emitted once, at its first match, and right rows never.
///
/// Each method may answer `None`: from [`both`](Self::both), the pair does not match
/// after all (a residual join condition, which the DataFrame layer evaluates as part of
/// the match, as Spark does); from [`left_only`](Self::left_only) /
/// [`right_only`](Self::right_only), nothing is emitted for that row (a join type chosen
/// at run time). The typed join's outputs always answer `Some`, which compiles away.
pub(crate) trait JoinOutput<K, L, R>: Clone + Send + 'static {
    /// The emitted record.
    type Out: Send + 'static;
    /// Whether unmatched left rows are emitted.
    const LEFT_OUTER: bool;
    /// Whether unmatched right rows are emitted.
    const RIGHT_OUTER: bool;
    /// Whether this is a left semi join.
    const SEMI: bool = false;

    /// A left and a right row whose keys and times match: the joined record, or `None`
    /// if the pair does not match.
    fn both(&mut self, key: &K, left: &L, right: &R) -> Option<Self::Out>;

    /// A left row that never matched (only called if `LEFT_OUTER`).
    fn left_only(&mut self, key: &K, left: &L) -> Option<Self::Out>;

    /// A right row that never matched (only called if `RIGHT_OUTER`).
    fn right_only(&mut self, key: &K, right: &R) -> Option<Self::Out>;
}

/// An inner join: `f(key, left, right)` per matching pair.
#[derive(Clone)]
pub(crate) struct Inner<F>(pub(crate) F);

impl<K, L, R, O, F> JoinOutput<K, L, R> for Inner<F>
where
    F: FnMut(&K, &L, &R) -> O + Clone + Send + 'static,
    O: Send + 'static,
{
    type Out = O;
    const LEFT_OUTER: bool = false;
    const RIGHT_OUTER: bool = false;

    #[inline(always)]
    fn both(&mut self, key: &K, left: &L, right: &R) -> Option<O> {
        Some((self.0)(key, left, right))
    }

    fn left_only(&mut self, _key: &K, _left: &L) -> Option<O> {
        unreachable!("an inner join emits no unmatched rows")
    }

    fn right_only(&mut self, _key: &K, _right: &R) -> Option<O> {
        unreachable!("an inner join emits no unmatched rows")
    }
}

/// A left outer join: `f(key, left, Some(right))` per matching pair, `f(key, left, None)`
/// for a left row that never matched.
#[derive(Clone)]
pub(crate) struct LeftOuter<F>(pub(crate) F);

impl<K, L, R, O, F> JoinOutput<K, L, R> for LeftOuter<F>
where
    F: FnMut(&K, &L, Option<&R>) -> O + Clone + Send + 'static,
    O: Send + 'static,
{
    type Out = O;
    const LEFT_OUTER: bool = true;
    const RIGHT_OUTER: bool = false;

    #[inline(always)]
    fn both(&mut self, key: &K, left: &L, right: &R) -> Option<O> {
        Some((self.0)(key, left, Some(right)))
    }

    fn left_only(&mut self, key: &K, left: &L) -> Option<O> {
        Some((self.0)(key, left, None))
    }

    fn right_only(&mut self, _key: &K, _right: &R) -> Option<O> {
        unreachable!("a left outer join emits no unmatched right rows")
    }
}

/// A right outer join: `f(key, Some(left), right)` per matching pair, `f(key, None,
/// right)` for a right row that never matched.
#[derive(Clone)]
pub(crate) struct RightOuter<F>(pub(crate) F);

impl<K, L, R, O, F> JoinOutput<K, L, R> for RightOuter<F>
where
    F: FnMut(&K, Option<&L>, &R) -> O + Clone + Send + 'static,
    O: Send + 'static,
{
    type Out = O;
    const LEFT_OUTER: bool = false;
    const RIGHT_OUTER: bool = true;

    #[inline(always)]
    fn both(&mut self, key: &K, left: &L, right: &R) -> Option<O> {
        Some((self.0)(key, Some(left), right))
    }

    fn left_only(&mut self, _key: &K, _left: &L) -> Option<O> {
        unreachable!("a right outer join emits no unmatched left rows")
    }

    fn right_only(&mut self, key: &K, right: &R) -> Option<O> {
        Some((self.0)(key, None, right))
    }
}

/// A full outer join: `f(key, Some(left), Some(right))` per matching pair, and the
/// unmatched rows of either side with the other `None`.
#[derive(Clone)]
pub(crate) struct FullOuter<F>(pub(crate) F);

impl<K, L, R, O, F> JoinOutput<K, L, R> for FullOuter<F>
where
    F: FnMut(&K, Option<&L>, Option<&R>) -> O + Clone + Send + 'static,
    O: Send + 'static,
{
    type Out = O;
    const LEFT_OUTER: bool = true;
    const RIGHT_OUTER: bool = true;

    #[inline(always)]
    fn both(&mut self, key: &K, left: &L, right: &R) -> Option<O> {
        Some((self.0)(key, Some(left), Some(right)))
    }

    fn left_only(&mut self, key: &K, left: &L) -> Option<O> {
        Some((self.0)(key, Some(left), None))
    }

    fn right_only(&mut self, key: &K, right: &R) -> Option<O> {
        Some((self.0)(key, None, Some(right)))
    }
}

/// A left semi join: `f(key, left)` once per left row that matches at least one right row.
#[derive(Clone)]
pub(crate) struct LeftSemi<F>(pub(crate) F);

impl<K, L, R, O, F> JoinOutput<K, L, R> for LeftSemi<F>
where
    F: FnMut(&K, &L) -> O + Clone + Send + 'static,
    O: Send + 'static,
{
    type Out = O;
    const LEFT_OUTER: bool = false;
    const RIGHT_OUTER: bool = false;
    const SEMI: bool = true;

    #[inline(always)]
    fn both(&mut self, key: &K, left: &L, _right: &R) -> Option<O> {
        Some((self.0)(key, left))
    }

    fn left_only(&mut self, _key: &K, _left: &L) -> Option<O> {
        unreachable!("a semi join emits no unmatched rows")
    }

    fn right_only(&mut self, _key: &K, _right: &R) -> Option<O> {
        unreachable!("a semi join emits no unmatched rows")
    }
}
