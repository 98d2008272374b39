//! The dashboard's files, compiled into the library.

/// The dashboard page (`/`): HTML and CSS; it loads [`dashboard_script`] from
/// `dashboard.js` beside it and polls `progress/recent`, `live/recent` and `plan` (relative URLs, so
/// the page also works behind a path prefix).
pub fn dashboard_html() -> &'static str {
    include_str!("assets/dashboard.html")
}

/// The dashboard's script (`/dashboard.js`): fetches the history every second and
/// draws the charts and the plan as SVG.
pub fn dashboard_script() -> &'static str {
    include_str!("assets/dashboard.js")
}
