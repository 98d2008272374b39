//! The few level-1 vector operations the models need, on plain slices (MLlib's `BLAS`
//! `dot`, `axpy`, `scal` and squared distance). Written as iterator folds the compiler
//! vectorises; a linear-algebra crate would add types at the API for these four loops.

/// `x · y`.
#[inline]
pub(crate) fn dot(x: &[f64], y: &[f64]) -> f64 {
    debug_assert_eq!(x.len(), y.len());
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// `y += a · x`.
#[inline]
pub(crate) fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// `x *= a`.
#[inline]
pub(crate) fn scale(a: f64, x: &mut [f64]) {
    for xi in x {
        *xi *= a;
    }
}

/// `|x - y|²`.
#[inline]
pub(crate) fn squared_distance(x: &[f64], y: &[f64]) -> f64 {
    debug_assert_eq!(x.len(), y.len());
    x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum()
}
